//! deploy/kubernetes: the manifests parse (python3-yaml), the sweep is an
//! Indexed Job whose pods add only NET_RAW and run as non-root, write
//! NDJSON to a mounted volume, and whose shell command gives pod i the
//! arguments of shard i+1 of N with the same seed: run through /bin/sh with
//! a stand-in `rawscan` that records its arguments, which rawscan's own
//! flag parser then checks. No cluster is needed.
mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

/// Every document of a YAML file, as JSON (through python3's yaml).
fn yaml_docs(file: &str) -> Option<Vec<Value>> {
    let Some(python) = find_tool("python3") else {
        return unavailable("python3 is not installed");
    };
    let path = format!("{DIR}/{file}");
    let mut c = Command::new(python);
    c.args([
        "-c",
        "import json, sys\n\
         try:\n    import yaml\n\
         except ImportError:\n    print('NO-YAML'); sys.exit(0)\n\
         json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        &path,
    ]);
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert_success(&format!("python3 yaml.safe_load_all({path})"), &out);
    let t = text(&out.stdout);
    if t.trim() == "NO-YAML" {
        return unavailable("python3's yaml module (Debian python3-yaml) is missing");
    }
    Some(serde_json::from_str(&t).expect("yaml as JSON"))
}

fn job<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Job {name}"))
}

#[test]
fn sweep_job_is_indexed_non_root_with_only_net_raw() {
    let Some(docs) = yaml_docs("rawscan-job.yaml") else {
        return;
    };
    let job = job(&docs, "rawscan-sweep");
    assert_eq!(job["apiVersion"], "batch/v1");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().expect("completions");
    assert!(n >= 2, "completions {n}");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"].as_u64(), Some(0));
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["capabilities"]["add"], serde_json::json!(["NET_RAW"]));
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_ne!(sc["privileged"], true);
    assert_ne!(sc["runAsUser"].as_u64(), Some(0));
    // File capabilities need exec without no_new_privs.
    assert_eq!(sc["allowPrivilegeEscalation"], true);

    // The results volume is mounted and backed by the claim defined here.
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    let vol = pod["volumes"].as_array().expect("volumes");
    let claim = vol
        .iter()
        .find(|v| v["name"] == mounts[0]["name"])
        .and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .expect("the mount's volume is a PVC");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "PersistentVolumeClaim" && d["metadata"]["name"] == claim),
        "no PersistentVolumeClaim {claim}"
    );
    let mount = mounts[0]["mountPath"].as_str().unwrap().to_string();

    // Run the pod's command for every index with a stand-in rawscan.
    let env: BTreeMap<String, String> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        env["SHARDS"],
        n.to_string(),
        "SHARDS must equal completions"
    );
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd, ["/bin/sh", "-c"]);
    let script = c["args"][0].as_str().expect("the shell script");
    let dir = std::env::temp_dir().join(format!("rawscan-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stub = dir.join("rawscan");
    std::fs::write(&stub, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_OUT\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut seeds = Vec::new();
    for i in 0..n {
        let out_file = dir.join(format!("args-{i}"));
        let mut sh = Command::new("/bin/sh");
        sh.args(["-c", script])
            .envs(&env)
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("ARGS_OUT", &out_file)
            .env("PATH", &path);
        let out = run_with_timeout(sh, Duration::from_secs(30));
        assert_success(&format!("pod {i}'s command"), &out);
        let words: Vec<OsString> = std::iter::once(OsString::from("rawscan"))
            .chain(
                std::fs::read_to_string(&out_file)
                    .unwrap()
                    .lines()
                    .map(OsString::from),
            )
            .collect();
        let args = <rawscan::cli::Args as clap::Parser>::try_parse_from(rawscan::cli::nmap_compat(
            words.clone(),
        ))
        .unwrap_or_else(|e| panic!("pod {i}: {words:?}: {e}"));
        let cfg = rawscan::config::build(&args, &|_| Err("no dns".into()))
            .unwrap_or_else(|e| panic!("pod {i}: {words:?}: {e}"));
        assert_eq!(
            (cfg.shard.k(), cfg.shard.n()),
            (i + 1, n),
            "pod {i}: {words:?}"
        );
        seeds.push(cfg.seed);
        match &cfg.outputs.ndjson {
            Some(rawscan::config::Dest::File(f)) => {
                assert!(
                    Path::new(f).starts_with(&mount),
                    "pod {i}: NDJSON {f} not on the volume {mount}"
                );
                assert!(f.ends_with(&format!("shard-{}.ndjson", i + 1)), "{f}");
            }
            other => panic!("pod {i}: NDJSON goes to {other:?}"),
        }
        assert!(Path::new(&cfg.resume_file).starts_with(&mount));
    }
    assert!(seeds.windows(2).all(|w| w[0] == w[1]), "seeds {seeds:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_job_reads_the_same_volume_without_capabilities() {
    let (Some(sweep), Some(docs)) = (
        yaml_docs("rawscan-job.yaml"),
        yaml_docs("rawscan-merge.yaml"),
    ) else {
        return;
    };
    let claim = |j: &Value| {
        j["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"].clone()
    };
    let m = job(&docs, "rawscan-merge");
    assert_eq!(claim(m), claim(job(&sweep, "rawscan-sweep")));
    let c = &m["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(c["securityContext"]["capabilities"]["add"].is_null());
    assert_eq!(
        m["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    let script = c["args"][0].as_str().unwrap();
    assert!(
        script.contains("rawscan merge") && script.contains("shard-*.ndjson"),
        "{script}"
    );
}

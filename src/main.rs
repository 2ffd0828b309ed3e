//! rawscan's entry point: all logic is in the library (`app`).

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    let code = rawscan::app::main_with(std::env::args_os().collect(), &mut out, &mut err);
    drop(out);
    std::process::exit(code);
}

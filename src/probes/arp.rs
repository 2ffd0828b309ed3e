//! Neighbour discovery probes (`-PR`): ARP for IPv4, Neighbour
//! Solicitation for IPv6, on a local Ethernet segment.
//!
//! - make: whole Ethernet frames (`make_frame`), since the sender needs
//!   the interface's MAC address: an ARP request (broadcast) for the key's
//!   address, or an NS to its solicited-node multicast address (hop limit
//!   255, our link-layer address as an option, so the answer comes back as
//!   unicast). `Module::make` refuses (there is no IP packet to make): the
//!   layer-2 sender calls `make_frame`.
//! - validate: an ARP reply (`validate_arp`) whose target protocol address
//!   is one of our sources and target hardware address our MAC; a
//!   solicited Neighbour Advertisement with hop limit 255 from the address
//!   it advertises, to one of our sources. ARP and NDP carry no cookie
//!   (nmap's are the same): what proves the host is that only the owner of
//!   the address answers for it on the segment.
//! - classify: `Open`, reason `arp-response` / `nd-response`, no TTL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Drop, Module, Reply};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::ethernet::{self, EthernetAddress, ethertype};
use crate::wire::{BuildError, IcmpMessage, Packet, arp, icmpv6, ipv6, proto as ipproto};

pub struct Neighbor;

/// The key of the neighbour probe for `ip`.
pub fn key(ip: IpAddr) -> ProbeKey {
    ProbeKey {
        ip,
        port: 0,
        proto: Proto::Arp,
    }
}

/// ff02::1:ffXX:XXXX for `a`.
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of IPv6 multicast `a`: 33:33 + its low
/// 32 bits.
fn multicast_mac(a: Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Write the frame that asks for `target` from `src` (our address on the
/// segment, same family) and `mac` (our interface's address) into `buf`;
/// returns its length.
pub fn make_frame(
    target: IpAddr,
    src: IpAddr,
    mac: EthernetAddress,
    buf: &mut [u8],
) -> Result<usize, BuildError> {
    match (target, src) {
        (IpAddr::V4(t), IpAddr::V4(s)) => {
            let h = ethernet::Repr {
                src: mac,
                dst: EthernetAddress::BROADCAST,
                ethertype: ethertype::ARP,
            }
            .emit(buf)?;
            let n = arp::Repr {
                operation: arp::Operation::Request,
                source_hardware_addr: mac,
                source_protocol_addr: s,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: t,
            }
            .emit(buf.get_mut(h..).unwrap_or_default())?;
            Ok(h + n)
        }
        (IpAddr::V6(t), IpAddr::V6(s)) => {
            let group = solicited_node(t);
            let h = ethernet::Repr {
                src: mac,
                dst: multicast_mac(group),
                ethertype: ethertype::IPV6,
            }
            .emit(buf)?;
            let ns = icmpv6::Repr::NeighborSolicit {
                target: t,
                source_lladdr: Some(mac),
            };
            let ip = ipv6::Repr {
                src: s,
                dst: group,
                next_header: ipproto::ICMPV6,
                payload_len: ns.buffer_len(),
                hop_limit: 255,
                traffic_class: 0,
                flow_label: 0,
            };
            let rest = buf.get_mut(h..).unwrap_or_default();
            let i = ip.emit(rest)?;
            let n = ns.emit(rest.get_mut(i..).unwrap_or_default(), s, group)?;
            Ok(h + i + n)
        }
        _ => Err(BuildError::FamilyMismatch),
    }
}

/// Is ARP message `a`, received on an interface whose address is `mac`,
/// an answer to one of our requests (sent from one of `sources`)?
pub fn validate_arp(
    a: &arp::Repr,
    mac: EthernetAddress,
    sources: &[IpAddr],
) -> Result<Reply, Drop> {
    if a.operation != arp::Operation::Reply {
        return Err(Drop::NotAReply);
    }
    if !sources.contains(&IpAddr::V4(a.target_protocol_addr)) || a.target_hardware_addr != mac {
        return Err(Drop::NotToUs);
    }
    let spa = a.source_protocol_addr;
    if spa == Ipv4Addr::UNSPECIFIED || a.source_hardware_addr.is_multicast() {
        return Err(Drop::NotAReply);
    }
    Ok(Reply {
        key: key(IpAddr::V4(spa)),
        state: PortState::Open,
        reason: Reason::ArpResponse,
        ttl: None,
        attempt: None,
    })
}

impl Module for Neighbor {
    fn make(
        &self,
        _key: &ProbeKey,
        _src: IpAddr,
        _attempt: u8,
        _cookies: &Cookies,
        _buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        // Not an IP packet: the layer-2 sender uses `make_frame`.
        Err(BuildError::FamilyMismatch)
    }

    fn validate(&self, pkt: &Packet<'_>, _cookies: &Cookies) -> Result<Reply, Drop> {
        let Packet::Icmp(info) = pkt else {
            return Err(Drop::NotAReply);
        };
        let IcmpMessage::V6(icmpv6::Repr::NeighborAdvert {
            solicited: true,
            target,
            ..
        }) = info.message
        else {
            return Err(Drop::NotAReply);
        };
        // RFC 4861: a hop limit below 255 did not come from the link.
        if info.ip.ttl != 255 || info.ip.src != IpAddr::V6(target) {
            return Err(Drop::BadCookie);
        }
        Ok(Reply {
            key: key(IpAddr::V6(target)),
            state: PortState::Open,
            reason: Reason::NdResponse,
            ttl: None,
            attempt: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::FramePayload;
    use crate::wire::{IpRepr, Transport, emit_packet, parse_frame, parse_ip};

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const TGT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 7);
    const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const TGT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xab, 0xcdef);

    #[test]
    fn arp_request_and_its_reply() {
        let mut b = [0u8; 64];
        let n = make_frame(IpAddr::V4(TGT), IpAddr::V4(ME), MAC, &mut b).unwrap();
        let f = parse_frame(&b[..n]).unwrap();
        assert_eq!(f.ethernet.dst, EthernetAddress::BROADCAST);
        let FramePayload::Arp(req) = f.payload else {
            panic!("not arp")
        };
        assert_eq!(req.target_protocol_addr, TGT);
        let reply = arp::Repr {
            operation: arp::Operation::Reply,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 7]),
            source_protocol_addr: TGT,
            target_hardware_addr: MAC,
            target_protocol_addr: ME,
        };
        let srcs = [IpAddr::V4(ME)];
        let r = validate_arp(&reply, MAC, &srcs).unwrap();
        assert_eq!(
            (r.key, r.reason),
            (key(IpAddr::V4(TGT)), Reason::ArpResponse)
        );
        // A request, or a reply to someone else, proves nothing.
        let mut other = reply;
        other.target_protocol_addr = Ipv4Addr::new(198, 18, 0, 9);
        assert_eq!(validate_arp(&other, MAC, &srcs), Err(Drop::NotToUs));
        assert_eq!(validate_arp(&req, MAC, &srcs), Err(Drop::NotAReply));
    }

    #[test]
    fn neighbour_solicitation_and_advertisement() {
        let mut b = [0u8; 128];
        let n = make_frame(IpAddr::V6(TGT6), IpAddr::V6(ME6), MAC, &mut b).unwrap();
        let f = parse_frame(&b[..n]).unwrap();
        assert_eq!(f.ethernet.dst.0, [0x33, 0x33, 0xff, 0xab, 0xcd, 0xef]);
        let FramePayload::Ip(Packet::Icmp(info)) = f.payload else {
            panic!("not icmpv6: {:?}", f.payload)
        };
        assert_eq!(info.ip.ttl, 255);
        assert_eq!(
            info.ip.dst,
            IpAddr::V6("ff02::1:ffab:cdef".parse::<Ipv6Addr>().unwrap())
        );
        let na = |hops: u8, solicited: bool| {
            let t = Transport::Icmpv6(icmpv6::Repr::NeighborAdvert {
                router: false,
                solicited,
                override_: true,
                target: TGT6,
                target_lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 7])),
            });
            let mut ip = IpRepr::probe(IpAddr::V6(TGT6), IpAddr::V6(ME6), 0, 0);
            ip.hop_limit = hops;
            let mut b = vec![0u8; 128];
            let n = emit_packet(&mut b, &ip, &t).unwrap();
            b.truncate(n);
            b
        };
        let c = Cookies::new([0; 16]);
        let srcs = [IpAddr::V6(ME6)];
        let ok = na(255, true);
        let r = crate::probes::validate(&parse_ip(&ok).unwrap(), &c, &srcs).unwrap();
        assert_eq!(
            (r.key, r.reason),
            (key(IpAddr::V6(TGT6)), Reason::NdResponse)
        );
        let far = na(64, true);
        assert!(crate::probes::validate(&parse_ip(&far).unwrap(), &c, &srcs).is_err());
        let unsolicited = na(255, false);
        assert!(crate::probes::validate(&parse_ip(&unsolicited).unwrap(), &c, &srcs).is_err());
    }
}

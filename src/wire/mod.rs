//! Packets: building probes and parsing replies. The only place bytes from
//! the network are interpreted.
//!
//! Invariants:
//! - Parsing never panics. Every parser checks lengths first (IPv4 IHL and
//!   total length, TCP data offset, UDP length, the IP header and 8 bytes
//!   quoted in an ICMP error) and only then hands the checked slice to a pnet
//!   view to read fields.
//! - Building is pure: builders write into a buffer the caller owns and
//!   hold no socket, clock or random number generator.

mod build;
mod parse;
pub mod payloads;

pub use build::{
    BuildError, IcmpErrorSpec, TcpSpec, UdpSpec, build_icmp_error_v4, build_tcp_v4, build_udp_v4,
};
pub use parse::{IcmpError, IpInfo, Packet, Quoted, TcpInfo, UdpInfo, WireError, parse_ip};

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

#[cfg(test)]
mod tests;

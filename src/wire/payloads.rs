//! Placeholder: the UDP payload table lands with the UDP scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieCheck {
    Match,
    Mismatch,
    NoIdField,
}
pub struct Payload {
    pub name: &'static str,
    pub ports: &'static [u16],
}
impl Payload {
    pub fn write(&self, _cookie: u32, buf: &mut Vec<u8>) {
        buf.clear();
    }
    pub fn check_reply(&self, _cookie: u32, _reply: &[u8]) -> CookieCheck {
        CookieCheck::NoIdField
    }
}
pub fn payload_for(_port: u16) -> Option<&'static Payload> {
    None
}

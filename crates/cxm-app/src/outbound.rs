//! Requests to URLs a tenant chose (webhook endpoints, and any later outbound URL): never to
//! this machine or the private networks around it. The address is checked when the URL is
//! saved and again at connect time, by the resolver the client connects through, so a name
//! that resolves to a public address when saved and to 127.0.0.1 later (DNS rebinding) is
//! still refused. Redirects are not followed. Operators who run receivers on an internal
//! network name it with `--webhook-allow-network`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Networks allowed although they are private (an operator's choice).
    pub allow: Vec<IpNet>,
}

/// Why an address is refused, said to the tenant who named it.
pub fn refused_because(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return Some(
                    refused_v4(v4).map_or("an IPv4-mapped or translated IPv6 address", |_| {
                        "an IPv6 address that embeds a private IPv4 address"
                    }),
                );
            }
            let seg = v6.segments();
            if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_loopback() {
                Some("a loopback address")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("a unique local (private) IPv6 address")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("a multicast address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_unspecified() || o[0] == 0 {
        Some("the unspecified address or \"this network\"")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private (RFC 1918) address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata lives there)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a carrier-grade NAT (shared) address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("an IETF protocol assignment address")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("a benchmarking address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if o[0] >= 240 {
        Some("a reserved or broadcast address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`)
/// or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5].iter().all(|x| *x == 0) && s[5] == 0xffff;
    let compatible = s[..6].iter().all(|x| *x == 0) && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    (mapped || compatible || nat64).then(tail)
}

impl OutboundPolicy {
    /// Ok, or why this address may not be reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        // an operator who allows 10.0.0.0/8 means ::ffff:10.x as well
        let as_v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        if self
            .allow
            .iter()
            .any(|n| n.contains(&ip) || as_v4.is_some_and(|v4| n.contains(&v4)))
        {
            return Ok(());
        }
        match refused_because(ip) {
            None => Ok(()),
            Some(why) => Err(format!(
                "{ip} is {why}; cxm does not send to private networks unless the server is started with --webhook-allow-network"
            )),
        }
    }

    /// Checks a URL a tenant wants cxm to call: http(s), a host, no credentials in it, and
    /// every address its host resolves to allowed. Resolving is what makes `localhost` or a
    /// name pointing at 10.0.0.5 fail here rather than at delivery.
    pub async fn check_url(&self, raw: &str) -> Result<reqwest::Url, String> {
        if raw.len() > 2000 {
            return Err("url is longer than 2000 characters".into());
        }
        let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url must be http or https, not {}", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not carry a user name or password".into());
        }
        let host = match url.host() {
            None => return Err("url must have a host".into()),
            Some(url::Host::Ipv4(ip)) => return self.check(IpAddr::V4(ip)).map(|()| url),
            Some(url::Host::Ipv6(ip)) => return self.check(IpAddr::V6(ip)).map(|()| url),
            Some(url::Host::Domain(d)) => d.to_string(),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("{host} did not resolve within 5 seconds"))?
        .map_err(|_| format!("{host} does not resolve"))?;
        let mut any = false;
        for a in addrs {
            any = true;
            self.check(a.ip())
                .map_err(|e| format!("{host} resolves to {e}"))?;
        }
        if !any {
            return Err(format!("{host} does not resolve"));
        }
        Ok(url)
    }

    /// A client for tenant-chosen URLs: it resolves names through this policy (so it
    /// connects only to addresses that passed), follows no redirects and gives up in time.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            // as reqwest::Client::new: only a TLS backend that cannot start fails here
            .expect("the outbound http client builds")
    }
}

/// Resolves names and drops every address the policy refuses; the client connects to what
/// is left, so the address that was checked is the address that is used.
struct GuardedResolver(OutboundPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A name that resolved only to addresses the policy refuses.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to addresses cxm may not reach", self.0)
    }
}

impl std::error::Error for Refused {}

/// Parses `--webhook-allow-network` values: CIDRs or single addresses.
pub fn parse_networks(values: &[String]) -> Result<Vec<IpNet>, String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{v:?} is not a network (CIDR such as 10.0.0.0/8) or an address")
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        let p = OutboundPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(p.check(ip(bad)).is_err(), "{bad} should be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(p.check(ip(good)).is_ok(), "{good} should be allowed");
        }
    }

    #[test]
    fn operators_can_allow_a_network() {
        let p = OutboundPolicy {
            allow: parse_networks(&["127.0.0.0/8, 10.0.0.5".into()]).unwrap(),
        };
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check(ip("10.0.0.5")).is_ok());
        assert!(p.check(ip("10.0.0.6")).is_err());
        assert!(parse_networks(&["nonsense".into()]).is_err());
    }

    #[tokio::test]
    async fn urls_are_checked_by_what_they_name_and_resolve_to() {
        let p = OutboundPolicy::default();
        for bad in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data",
            "ftp://example.com/",
            "http://user:pw@8.8.8.8/",
            "/relative",
        ] {
            assert!(p.check_url(bad).await.is_err(), "{bad} should be refused");
        }
        assert!(p.check_url("https://8.8.8.8/hook").await.is_ok());
        let e = p.check_url("http://localhost:8080/").await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
    }
}

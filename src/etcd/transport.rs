//! The bytes' way to an etcd member: plain TCP, or TLS over it (rustls, in
//! a build with the `etcd-tls` feature).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::http::{HttpError, Url};

/// The bytes' way to a member: plain TCP, or TLS over it.
#[derive(Debug)]
pub(super) enum Transport {
    Plain(TcpStream),
    #[cfg(feature = "etcd-tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    /// The TCP connection under it, for its timeouts.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            #[cfg(feature = "etcd-tls")]
            Transport::Tls(stream) => stream.get_ref(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
            #[cfg(feature = "etcd-tls")]
            Transport::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            #[cfg(feature = "etcd-tls")]
            Transport::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            #[cfg(feature = "etcd-tls")]
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

/// The transport an URL asks for: TLS needs its configuration.
#[cfg(feature = "etcd-tls")]
pub(super) fn secure(
    url: &Url,
    tls: Option<&super::tls::Tls>,
    stream: TcpStream,
) -> Result<Transport, HttpError> {
    match (url.tls, tls) {
        (false, _) => Ok(Transport::Plain(stream)),
        (true, Some(tls)) => {
            let name = rustls::pki_types::ServerName::try_from(url.host().to_owned())
                .map_err(|_| HttpError::Malformed("a host name TLS cannot check"))?;
            let connection = rustls::ClientConnection::new(tls.0.clone(), name)
                .map_err(|e| HttpError::Io(io::Error::other(e)))?;
            Ok(Transport::Tls(Box::new(rustls::StreamOwned::new(
                connection, stream,
            ))))
        }
        (true, None) => Err(HttpError::Malformed("https:// without --etcd-ca")),
    }
}

/// The transport an URL asks for: this build has plain TCP only.
#[cfg(not(feature = "etcd-tls"))]
pub(super) fn secure(
    url: &Url,
    _tls: Option<&super::tls::Tls>,
    stream: TcpStream,
) -> Result<Transport, HttpError> {
    match url.tls {
        false => Ok(Transport::Plain(stream)),
        true => Err(HttpError::Malformed("https:// in a build without TLS")),
    }
}

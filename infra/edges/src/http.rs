//! Just enough HTTP/1.1 for an edge to know where each request starts: request heads are found
//! and their bodies counted (`content-length`); a body of another framing (chunked) or a head
//! past 64 KiB makes the rest of the connection opaque (passed on, no HTTP fault applies).
//! Responses are not framed: a consumer that does not pipeline sends its next request only
//! after the last response, which is all an edge needs to answer a request itself.

/// A piece of the request stream, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Part {
    /// A whole request head (request line and headers, through the blank line).
    Head(Vec<u8>),
    /// Body bytes of the last head.
    Body(Vec<u8>),
    /// Bytes of a stream no longer framed.
    Opaque(Vec<u8>),
}

enum State {
    Head,
    Body(u64),
    Opaque,
}

/// Splits a connection's request bytes into heads and bodies.
pub struct Requests {
    state: State,
    pending: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;

impl Default for Requests {
    fn default() -> Self {
        Self {
            state: State::Head,
            pending: Vec::new(),
        }
    }
}

impl Requests {
    /// Feed the next bytes read; complete pieces are pushed to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Part>) {
        let mut data = data;
        while !data.is_empty() {
            match self.state {
                State::Opaque => {
                    out.push(Part::Opaque(data.to_vec()));
                    return;
                }
                State::Body(left) => {
                    let n = (left as usize).min(data.len());
                    out.push(Part::Body(data[..n].to_vec()));
                    data = &data[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                }
                State::Head => {
                    let from = self.pending.len().saturating_sub(3);
                    let seen = self.pending.len();
                    self.pending.extend_from_slice(data);
                    let Some(at) = find_blank_line(&self.pending[from..]) else {
                        if self.pending.len() > MAX_HEAD {
                            self.state = State::Opaque;
                            out.push(Part::Opaque(std::mem::take(&mut self.pending)));
                        }
                        return;
                    };
                    let end = from + at + 4;
                    // What of `data` follows the head.
                    data = &data[end - seen..];
                    self.pending.truncate(end);
                    let head = std::mem::take(&mut self.pending);
                    match body_length(&head) {
                        Framed::Length(n) => {
                            self.state = if n == 0 { State::Head } else { State::Body(n) };
                            out.push(Part::Head(head));
                        }
                        Framed::Otherwise => {
                            self.state = State::Opaque;
                            out.push(Part::Head(head));
                        }
                        Framed::NotHttp1 => {
                            self.state = State::Opaque;
                            out.push(Part::Opaque(head));
                        }
                    }
                }
            }
        }
    }
}

/// Where `\r\n\r\n` starts in `b`.
pub fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

enum Framed {
    /// `content-length` (0 when none).
    Length(u64),
    /// An HTTP/1.1 request with a body framed otherwise (chunked).
    Otherwise,
    /// Not an HTTP/1.x request head (HTTP/2's preface, another protocol).
    NotHttp1,
}

/// How the body of the request `head` is framed.
fn body_length(head: &[u8]) -> Framed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Framed::NotHttp1,
    }
    let mut len = 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Framed::Otherwise;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => len = n,
                None => return Framed::Otherwise,
            }
        }
    }
    Framed::Length(len)
}

/// The answer an edge gives itself for a request a status fault hits.
pub fn answer(code: u16, fault: &str, label: &str) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Lab Fault",
    };
    let body = format!(
        "{{\"error\":\"lab_fault\",\"message\":\"answered by lab fault {fault} ({label})\"}}"
    );
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-lab-fault: {label}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(chunks: &[&[u8]]) -> Vec<Part> {
        let mut r = Requests::default();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, &mut out);
        }
        out
    }

    #[test]
    fn heads_and_bodies_are_found_across_any_split() {
        let stream: &[u8] = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nPOST /b HTTP/1.1\r\ncontent-length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\n\r\n";
        let whole = parts(&[stream]);
        let heads = |ps: &[Part]| -> Vec<Vec<u8>> {
            ps.iter()
                .filter_map(|p| match p {
                    Part::Head(h) => Some(h.clone()),
                    _ => None,
                })
                .collect()
        };
        let body = |ps: &[Part]| -> Vec<u8> {
            ps.iter()
                .flat_map(|p| match p {
                    Part::Body(b) => b.clone(),
                    _ => Vec::new(),
                })
                .collect()
        };
        assert_eq!(heads(&whole).len(), 3);
        assert_eq!(body(&whole), b"hello");
        for cut in 1..stream.len() {
            for cut2 in cut..stream.len() {
                let split = parts(&[&stream[..cut], &stream[cut..cut2], &stream[cut2..]]);
                assert_eq!(heads(&split), heads(&whole), "cut at {cut},{cut2}");
                assert_eq!(body(&split), b"hello", "cut at {cut},{cut2}");
            }
        }
    }

    #[test]
    fn a_chunked_body_makes_the_rest_opaque() {
        let out = parts(&[
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ]);
        assert!(matches!(out[0], Part::Head(_)));
        assert_eq!(out[1], Part::Opaque(b"5\r\nhello\r\n0\r\n\r\n".to_vec()));
    }

    #[test]
    fn an_http2_preface_is_not_a_request() {
        let out = parts(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"]);
        assert!(matches!(out[0], Part::Opaque(_)), "{out:?}");
        assert!(out.iter().all(|p| matches!(p, Part::Opaque(_))));
    }

    #[test]
    fn an_answer_is_a_whole_response() {
        let a = answer(503, "f1", "status:503");
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(&a).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial"),
        };
        assert_eq!(r.code, Some(503));
        let len: usize = r
            .headers
            .iter()
            .find(|h| h.name == "content-length")
            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
            .unwrap();
        assert_eq!(a.len() - n, len);
    }
}

//! The book's CPU-bound endpoint (cluster-fibonacci.js): `GET /fibonacci/:limit` answers the
//! `limit`-th Fibonacci number as a decimal string, in arbitrary precision as the book's BigInt
//! loop does, and with the same loop: `limit` additions of ever longer numbers, so the time
//! grows with the square of `limit` and a big one holds the event loop for seconds.
//!
//! On a one-thread service that blocks every other request (chapter 1's lesson); with
//! `offload = true` the loop runs on tokio's blocking pool instead (libuv's thread pool).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use lab_service_kit::JsonError;

/// The largest `limit` served: fib(1 000 000) has 208 988 digits and takes about ten seconds
/// of one core; anything larger is refused rather than left to hold a core for minutes.
pub const MAX_LIMIT: u64 = 1_000_000;

/// Limbs hold 18 decimal digits each, least significant first.
const BASE: u64 = 1_000_000_000_000_000_000;

/// fib(limit) with fib(0) = 0, fib(1) = 1, as a decimal string: the book's loop
/// (`prev = prev + next; next = old prev`, `limit` times).
pub fn fibonacci(limit: u64) -> String {
    let (mut prev, mut next): (Vec<u64>, Vec<u64>) = (vec![1], vec![0]);
    for _ in 0..limit {
        // prev, next = prev + next, prev — computed into `next`'s buffer, then swapped.
        add_into(&mut next, &prev);
        std::mem::swap(&mut prev, &mut next);
    }
    to_decimal(&next)
}

/// `acc += x` (acc ≤ x in length, as in the loop; grows acc as needed).
fn add_into(acc: &mut Vec<u64>, x: &[u64]) {
    if acc.len() < x.len() {
        acc.resize(x.len(), 0);
    }
    let mut carry = 0;
    for (i, a) in acc.iter_mut().enumerate() {
        let sum = *a + x.get(i).copied().unwrap_or(0) + carry;
        (*a, carry) = if sum >= BASE {
            (sum - BASE, 1)
        } else {
            (sum, 0)
        };
    }
    if carry > 0 {
        acc.push(carry);
    }
}

fn to_decimal(limbs: &[u64]) -> String {
    let mut out = String::with_capacity(limbs.len() * 18);
    let mut it = limbs.iter().rev();
    if let Some(top) = it.next() {
        out.push_str(&top.to_string());
    }
    for l in it {
        out.push_str(&format!("{l:018}"));
    }
    out
}

/// `GET /fibonacci/{limit}`: `text/plain` decimal answer; a bad or too large limit is a 400.
pub async fn get(
    State(offload): State<bool>,
    Path(limit): Path<String>,
) -> Result<String, JsonError> {
    let limit: u64 = limit.trim().parse().map_err(|_| {
        JsonError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "limit must be a whole number",
        )
    })?;
    if limit > MAX_LIMIT {
        return Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("limit must be at most {MAX_LIMIT}"),
        ));
    }
    if offload {
        tokio::task::spawn_blocking(move || fibonacci(limit))
            .await
            .map_err(|e| {
                JsonError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })
    } else {
        Ok(fibonacci(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::fibonacci;

    #[test]
    fn small_values_match_the_sequence() {
        let first: Vec<String> = (0..12).map(fibonacci).collect();
        assert_eq!(
            first,
            [
                "0", "1", "1", "2", "3", "5", "8", "13", "21", "34", "55", "89"
            ]
        );
    }

    #[test]
    fn big_values_carry_across_limbs() {
        // fib(100) and fib(300), known values.
        assert_eq!(fibonacci(100), "354224848179261915075");
        assert_eq!(
            fibonacci(300),
            "222232244629420445529739893461909967206666939096499764990979600"
        );
        // fib(1000) has 209 digits.
        assert_eq!(fibonacci(1000).len(), 209);
        assert!(fibonacci(1000).starts_with("43466557686937456435688527675040625802564"));
    }
}

//! Chapter 2, "Protocols": the same recipe over HTTP/JSON, gzip, GraphQL and gRPC, the
//! consumers of each, and the dangers of serialising internal objects.
//!
//! Every figure is measured here, over the wire; contracts are the book's, so a learner's own
//! producer passes if it keeps them.

use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{Value, json};

use super::AbortOnDrop;
use super::wire::{grpc_unary, gunzip};
use super::{BoxFut, Ctx, Record, Scenario, median_max_ms};
use crate::config::raw::{Builtin, TargetProtocol};
use lab_recipe_api::grpc::pb;

/// Requests per measurement.
const SAMPLES: usize = 20;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch2.http-json",
            chapter: 2,
            section: "Protocols › Request and Response with HTTP › Payload Serialization",
            summary: "GET /recipes/42 answers JSON with the recipe's fields",
            run: http_json,
            proxy: false,
        },
        Scenario {
            name: "ch2.gzip",
            chapter: 2,
            section: "Protocols › Request and Response with HTTP › HTTP Compression",
            summary: "gzip only when asked; fewer bytes, same JSON",
            run: gzip,
            proxy: false,
        },
        Scenario {
            name: "ch2.https",
            chapter: 2,
            section: "Protocols › Request and Response with HTTP › HTTPS / TLS",
            summary: "served over TLS by a certificate of the lab CA; plain HTTP and other CAs refused",
            run: https,
            proxy: false,
        },
        Scenario {
            name: "ch2.graphql",
            chapter: 2,
            section: "Protocols › GraphQL",
            summary: "the kitchenSink query, an error for an unknown id, introspection",
            run: graphql,
            proxy: false,
        },
        Scenario {
            name: "ch2.grpc",
            chapter: 2,
            section: "Protocols › RPC with gRPC",
            summary: "GetRecipe, GetMetaData and NOT_FOUND from the contract proto",
            run: grpc,
            proxy: false,
        },
        Scenario {
            name: "ch2.consumers",
            chapter: 2,
            section: "Protocols › consumers (web-api-graphql, web-api-grpc)",
            summary: "web-api returns recipe 42 calling recipe-api over http, graphql and grpc",
            run: consumers,
            proxy: false,
        },
        Scenario {
            name: "ch2.serialization",
            chapter: 2,
            section: "Protocols › Request and Response with HTTP › Dangers of Serializing POJOs",
            summary: "no protocol's response carries the stored recipe's internal secret_formula",
            run: serialization,
            proxy: false,
        },
    ]
}

fn recipe_ok(r: &Value) -> bool {
    r["name"] == "Chicken Tikka Masala" && r["ingredients"].as_array().is_some_and(|i| i.len() == 2)
}

fn http_json<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        let (r, _) = ctx.get(&base, "/recipes/42").await?;
        rec.check(
            "GET /recipes/42 answers 200",
            r.status == 200,
            format!("status {}", r.status),
        );
        let ctype = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        rec.check(
            "content-type is JSON",
            ctype.starts_with("application/json"),
            ctype,
        );
        let v = r.json().unwrap_or(Value::Null);
        let recipe = &v["recipe"];
        rec.check(
            "recipe has id 42, name, steps and 2 ingredients",
            recipe["id"] == json!(42) && recipe_ok(recipe) && recipe["steps"].is_string(),
            recipe.to_string(),
        );
        rec.check(
            "producer_pid is a number",
            v["producer_pid"].is_u64(),
            v["producer_pid"].to_string(),
        );
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            lat.push(ctx.get(&base, "/recipes/42").await?.1);
        }
        let (p50, _) = median_max_ms(lat);
        rec.figure("latency p50", p50, "ms");
        rec.figure("response size", r.body.len() as f64, "bytes");
        Ok(())
    })
}

fn gzip<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        let url = format!("{base}/recipes/42");
        let (plain, gz) = ctx.get_plain_and_gzip(&url).await?;
        let enc = |r: &lab_service_kit::client::Response| match super::content_encoding(r) {
            e if e.is_empty() => "none".to_owned(),
            e => e,
        };
        rec.check(
            "no Accept-Encoding: not compressed",
            enc(&plain) == "none",
            format!("content-encoding {}", enc(&plain)),
        );
        rec.check(
            "Accept-Encoding: gzip → gzip",
            enc(&gz) == "gzip",
            format!("content-encoding {}", enc(&gz)),
        );
        let unzipped = gunzip(&gz.body);
        rec.check(
            "the gzip body decodes",
            unzipped.is_ok(),
            format!("{:?}", unzipped.as_ref().err()),
        );
        let same = unzipped
            .ok()
            .and_then(|u| serde_json::from_slice::<Value>(&u).ok())
            .map(|v| v["recipe"].clone());
        let want = plain.json().ok().map(|v| v["recipe"].clone());
        rec.check(
            "decompressed JSON equals the plain JSON",
            same.is_some() && same == want,
            "recipe compared",
        );
        rec.check(
            "compressed bytes are fewer",
            gz.body.len() < plain.body.len(),
            format!("{} gzip bytes vs {} plain", gz.body.len(), plain.body.len()),
        );
        rec.figure("plain body", plain.body.len() as f64, "bytes");
        rec.figure("gzip body", gz.body.len() as f64, "bytes");
        rec.figure(
            "gzip / plain",
            gz.body.len() as f64 / plain.body.len().max(1) as f64,
            "ratio",
        );
        Ok(())
    })
}

fn https<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        // The lab's https recipe-api if it has one, else a built-in one started here over TLS
        // with a certificate from a CA made for the check.
        let lab_https = ctx
            .first(Builtin::RecipeApi)
            .ok()
            .filter(|b| b.starts_with("https://"));
        let (base, ca, _guard) = match (lab_https, &ctx.tls_ca) {
            (Some(base), Some(ca)) => (base, ca.clone(), None),
            _ => {
                let (base, ca, guard) = start_tls_recipe_api().await?;
                (base, ca, Some(guard))
            }
        };
        let trusting =
            lab_service_kit::client::Client::with_tls(lab_service_kit::tls::client_config(&ca)?);
        let t0 = Instant::now();
        let r = trusting
            .get(&format!("{base}/recipes/42"), ctx.timeout)
            .await;
        let first = t0.elapsed();
        let ok = r
            .as_ref()
            .is_ok_and(|r| r.status == 200 && r.json().is_ok_and(|v| recipe_ok(&v["recipe"])));
        rec.check(
            "GET https://…/recipes/42 trusting only the lab CA answers recipe 42",
            ok,
            match &r {
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.to_string(),
            },
        );
        let plain = format!("http://{}/recipes/42", super::host_port(&base));
        let p = ctx.client.get(&plain, Duration::from_secs(2)).await;
        rec.check(
            "plain HTTP on the TLS port gets no answer",
            !p.as_ref().is_ok_and(|r| r.status.is_success()),
            match &p {
                Ok(r) => format!("status {}", r.status),
                Err(e) => format!("{} error", e.kind()),
            },
        );
        let other_dir = tempfile::tempdir()?;
        let other = crate::tls::LabCa::ensure(other_dir.path())?;
        let stranger = lab_service_kit::client::Client::with_tls(
            lab_service_kit::tls::client_config(&other.ca_cert())?,
        );
        let o = stranger
            .get(&format!("{base}/recipes/42"), ctx.timeout)
            .await;
        rec.check(
            "a client trusting another CA refuses the certificate",
            matches!(o, Err(lab_service_kit::client::ClientError::Tls(_))),
            match &o {
                Ok(r) => format!("status {} (should have failed)", r.status),
                Err(e) => truncate(&e.to_string(), 160),
            },
        );
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            let t0 = Instant::now();
            trusting
                .get(&format!("{base}/recipes/42"), ctx.timeout)
                .await?;
            lat.push(t0.elapsed());
        }
        rec.figure(
            "first request incl. TLS handshake",
            first.as_secs_f64() * 1e3,
            "ms",
        );
        rec.figure("keep-alive latency p50", median_max_ms(lat).0, "ms");
        Ok(())
    })
}

/// A built-in recipe-api serving TLS on a free port with a certificate from a CA made in a temp
/// dir; returns its base URL, the CA file, and a guard that stops it and removes the files.
async fn start_tls_recipe_api()
-> anyhow::Result<(String, std::path::PathBuf, (AbortOnDrop, tempfile::TempDir))> {
    let dir = tempfile::tempdir()?;
    let ca = crate::tls::LabCa::ensure(dir.path())?;
    let issued = ca.server_cert("recipe-api")?;
    let cfg = lab_service_kit::tls::server_config(&issued.cert, &issued.key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("https://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let cap = lab_service_kit::serve::DRAIN_CAP;
        let _ = lab_service_kit::serve::serve_tls(
            listener,
            lab_recipe_api::router(),
            std::future::pending(),
            cfg,
            cap,
        )
        .await;
    });
    Ok((base, ca.ca_cert(), (AbortOnDrop(task), dir)))
}

async fn gql(ctx: &Ctx, base: &str, body: Value) -> anyhow::Result<(u16, Value, Duration)> {
    let t0 = Instant::now();
    let r = ctx
        .client
        .post_json(&format!("{base}/graphql"), &body, ctx.timeout)
        .await?;
    Ok((
        r.status.as_u16(),
        r.json().unwrap_or(Value::Null),
        t0.elapsed(),
    ))
}

fn graphql<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        let addr = &base[..];
        let sink = json!({"query": lab_web_api::KITCHEN_SINK, "variables": {"id": "42"}});
        let (s, v, _) = gql(ctx, addr, sink.clone()).await?;
        let r = &v["data"]["recipe"];
        rec.check("kitchenSink answers 200", s == 200, format!("status {s}"));
        rec.check(
            "kitchenSink returns recipe 42 and its ingredients",
            r["id"] == "42"
                && r["name"] == "Chicken Tikka Masala"
                && r["ingredients"][0] == json!({"name": "Chicken", "quantity": "1 lb"}),
            r.to_string(),
        );
        rec.check(
            "kitchenSink returns the producer's pid",
            v["data"]["pid"].is_i64(),
            v["data"]["pid"].to_string(),
        );
        let (s, v, _) = gql(
            ctx,
            addr,
            json!({"query": lab_web_api::KITCHEN_SINK, "variables": {"id": "7"}}),
        )
        .await?;
        rec.check(
            "unknown id: HTTP 200 with a GraphQL error",
            s == 200
                && v["errors"].as_array().is_some_and(|e| !e.is_empty())
                && v["data"]["recipe"].is_null(),
            v.to_string(),
        );
        let (_, v, _) = gql(
            ctx,
            addr,
            json!({"query": "{ __schema { queryType { name } types { name } } }"}),
        )
        .await?;
        let types: Vec<&str> = v["data"]["__schema"]["types"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        rec.check(
            "introspection lists Query, Recipe and Ingredient",
            v["data"]["__schema"]["queryType"]["name"] == "Query"
                && types.contains(&"Recipe")
                && types.contains(&"Ingredient"),
            format!("{} types", types.len()),
        );
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            lat.push(gql(ctx, addr, sink.clone()).await?.2);
        }
        rec.figure("kitchenSink latency p50", median_max_ms(lat).0, "ms");
        Ok(())
    })
}

/// The `host:port` for gRPC with prior knowledge; gRPC over TLS is not what this checks.
fn plain_grpc_addr(base: &str) -> anyhow::Result<&str> {
    if base.starts_with("https://") {
        anyhow::bail!(
            "recipe-api serves https here; this scenario checks gRPC over plain HTTP/2 (use a lab whose recipe-api has protocol = \"http\")"
        );
    }
    Ok(super::host_port(base))
}

/// `RecipeRequest { id }`, encoded.
fn recipe_request(id: i32) -> Vec<u8> {
    pb::RecipeRequest { id }.encode_to_vec()
}

fn grpc<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        let addr = plain_grpc_addr(&base)?;
        let get = "/recipe.RecipeService/GetRecipe";
        let r = grpc_unary(addr, get, &recipe_request(42), ctx.timeout).await?;
        rec.check(
            "GetRecipe(42) is OK",
            r.status == 0,
            format!("grpc-status {} {}", r.status, r.message),
        );
        let recipe = pb::Recipe::decode(&r.body[..]);
        rec.check(
            "GetRecipe(42) returns the recipe with 2 ingredients",
            recipe.as_ref().is_ok_and(|x| {
                x.id == 42 && x.name == "Chicken Tikka Masala" && x.ingredients.len() == 2
            }),
            format!("{recipe:?}"),
        );
        let m = grpc_unary(addr, "/recipe.RecipeService/GetMetaData", &[], ctx.timeout).await?;
        let meta = pb::Meta::decode(&m.body[..]);
        rec.check(
            "GetMetaData returns a pid (field 2)",
            m.status == 0 && meta.as_ref().is_ok_and(|x| x.pid > 0),
            format!("grpc-status {}, {meta:?}", m.status),
        );
        let nf = grpc_unary(addr, get, &recipe_request(7), ctx.timeout).await?;
        rec.check(
            "GetRecipe(7) is NOT_FOUND with a message",
            nf.status == 5 && !nf.message.is_empty(),
            format!("grpc-status {} {:?}", nf.status, nf.message),
        );
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            let t0 = Instant::now();
            grpc_unary(addr, get, &recipe_request(42), ctx.timeout).await?;
            lat.push(t0.elapsed());
        }
        rec.figure(
            "GetRecipe latency p50 (new connection each)",
            median_max_ms(lat).0,
            "ms",
        );
        rec.figure("GetRecipe message size", r.body.len() as f64, "bytes");
        Ok(())
    })
}

/// The shape each book consumer answers with, checked for recipe 42.
fn consumer_ok(p: TargetProtocol, v: &Value) -> bool {
    let pid_ok = v["consumer_pid"].is_u64();
    pid_ok
        && match p {
            TargetProtocol::Http | TargetProtocol::Https => {
                v["producer_data"]["recipe"]["id"] == json!(42)
                    && recipe_ok(&v["producer_data"]["recipe"])
            }
            TargetProtocol::Graphql => v["producer_data"]["data"]["recipe"]["id"] == "42",
            TargetProtocol::Grpc => {
                v["recipe"]["id"] == json!(42)
                    && recipe_ok(&v["recipe"])
                    && v["producer_data"]["pid"].is_i64()
            }
        }
}

fn consumers<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producer_base = ctx.first(Builtin::RecipeApi)?;
        let producer = super::host_port(&producer_base).to_owned();
        // Over TLS only an https consumer may call it (the lab never falls back to plain HTTP).
        let protocols: &[TargetProtocol] = if producer_base.starts_with("https://") {
            &[TargetProtocol::Https]
        } else {
            &[
                TargetProtocol::Http,
                TargetProtocol::Graphql,
                TargetProtocol::Grpc,
            ]
        };
        for &p in protocols {
            // The lab's own consumer for this protocol if it has one, else a built-in web-api
            // started here (in this process, over real sockets) against the lab's producer.
            let configured = ctx
                .endpoints
                .iter()
                .filter(|e| e.service == "web-api" || e.builtin == Some(Builtin::WebApi))
                .find(|e| {
                    e.target_protocol.unwrap_or(TargetProtocol::Http) == p && !e.addrs.is_empty()
                });
            let (addr, which, _guard) = match configured {
                Some(e) => (e.addrs[0].clone(), format!("lab's {}", e.service), None),
                None => {
                    let (addr, guard) = start_web_api(&producer, p, ctx).await?;
                    (
                        addr,
                        "built-in web-api started for the check".to_owned(),
                        Some(guard),
                    )
                }
            };
            let (r, _) = ctx.get(&addr, "/").await?;
            let v = r.json().unwrap_or(Value::Null);
            rec.check(
                format!("{} consumer ({which}) returns recipe 42", p.as_str()),
                r.status == 200 && consumer_ok(p, &v),
                format!("status {}: {}", r.status, truncate(&v.to_string(), 160)),
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                lat.push(ctx.get(&addr, "/").await?.1);
            }
            rec.figure(
                format!("{} chain latency p50", p.as_str()),
                median_max_ms(lat).0,
                "ms",
            );
        }
        Ok(())
    })
}

/// Start a built-in web-api on a free port, calling `target` over `p`; it stops when the guard drops.
async fn start_web_api(
    target: &str,
    p: TargetProtocol,
    ctx: &Ctx,
) -> anyhow::Result<(String, AbortOnDrop)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let timeout = ctx.timeout;
    let state = match p {
        TargetProtocol::Http => {
            lab_web_api::AppState::new(target, timeout, lab_web_api::TargetProtocol::Http)
        }
        TargetProtocol::Graphql => {
            lab_web_api::AppState::new(target, timeout, lab_web_api::TargetProtocol::Graphql)
        }
        TargetProtocol::Grpc => {
            lab_web_api::AppState::new(target, timeout, lab_web_api::TargetProtocol::Grpc)
        }
        TargetProtocol::Https => {
            let ca = ctx.tls_ca.as_ref().ok_or_else(|| {
                anyhow::anyhow!("recipe-api serves https but the lab has no CA file")
            })?;
            lab_web_api::AppState::https(target, timeout, lab_service_kit::tls::client_config(ca)?)
        }
    };
    let app = lab_web_api::router(state);
    let task = tokio::spawn(async move {
        let _ = lab_service_kit::serve::serve(listener, app, std::future::pending()).await;
    });
    Ok((addr, AbortOnDrop(task)))
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_owned()
    } else {
        format!(
            "{}…",
            &s[..s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)]
        )
    }
}

fn serialization<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        let mut bodies: Vec<(&str, Vec<u8>)> = Vec::new();
        bodies.push(("http", ctx.get(&base, "/recipes/42").await?.0.body.to_vec()));
        let full = json!({"query": "{ recipe(id: \"42\") { id name steps ingredients { id name quantity } } pid }"});
        let r = ctx
            .client
            .post_json(&format!("{base}/graphql"), &full, ctx.timeout)
            .await?;
        bodies.push(("graphql", r.body.to_vec()));
        let intro = json!({"query": "{ __type(name: \"Recipe\") { fields { name } } }"});
        let r = ctx
            .client
            .post_json(&format!("{base}/graphql"), &intro, ctx.timeout)
            .await?;
        bodies.push(("graphql introspection", r.body.to_vec()));
        if !base.starts_with("https://") {
            let get = "/recipe.RecipeService/GetRecipe";
            let reply = grpc_unary(
                super::host_port(&base),
                get,
                &recipe_request(42),
                ctx.timeout,
            )
            .await?;
            bodies.push(("grpc (raw message bytes)", reply.body));
        }
        for (what, body) in &bodies {
            let text = String::from_utf8_lossy(body).to_lowercase();
            let leaks = text.contains("secret")
                || text.contains(&lab_recipe_api::model::SECRET_FORMULA.to_lowercase());
            rec.check(
                format!("{what}: no secret_formula"),
                !body.is_empty() && !leaks,
                format!("{} bytes inspected", body.len()),
            );
        }
        Ok(())
    })
}

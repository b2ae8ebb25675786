//! Chapter 2, "Protocols": the same recipe over HTTP/JSON, gzip, HTTPS, GraphQL and gRPC, the
//! consumers of each, and the dangers of serialising internal objects.
//!
//! Each scenario runs against every producer that declares the protocol it checks (`serves`)
//! and every consumer by its `target_protocol`, over the wire, by the contract of
//! [`super::contract`] only: the book's one-file-per-protocol producers each pass the checks of
//! what they serve and are not held to the rest.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::contract::{self, GET_META, GET_RECIPE, KITCHEN_SINK, UNKNOWN_ID};
use super::wire::{grpc_unary_on, gunzip};
use super::{BoxFut, Ctx, Endpoint, Record, Scenario, Subject, median_max_ms, not_applicable};
use crate::config::model::{Builtin, Protocol, Serve, TargetProtocol};

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
            summary: "producers that serve gzip: gzip only when asked; fewer bytes, same JSON",
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
            summary: "GetRecipe, GetMetaData, and an error status for an unknown id, from the contract proto",
            run: grpc,
            proxy: false,
        },
        Scenario {
            name: "ch2.consumers",
            chapter: 2,
            section: "Protocols › consumers (web-api, web-api-graphql, web-api-grpc)",
            summary: "every consumer returns recipe 42 in the shape of its protocol",
            run: consumers,
            proxy: false,
        },
        Scenario {
            name: "ch2.serialization",
            chapter: 2,
            section: "Protocols › Request and Response with HTTP › Dangers of Serializing POJOs",
            summary: "the recipe in every protocol's answer carries exactly the contract's fields, nothing more",
            run: serialization,
            proxy: false,
        },
    ]
}

/// A client that trusts the lab's CA, for a producer over TLS.
fn tls_client(ctx: &Ctx, e: &Endpoint) -> anyhow::Result<lab_service_kit::client::Client> {
    match (&e.protocol, &ctx.tls_ca) {
        (Protocol::Https, Some(ca)) => Ok(lab_service_kit::client::Client::with_tls(
            lab_service_kit::tls::client_config(ca)?,
        )),
        (Protocol::Https, None) => anyhow::bail!(
            "`{}` serves https but the lab has no CA file under {}",
            e.service,
            ctx.tls_dir.display()
        ),
        (Protocol::Http, _) => Ok(ctx.client.clone()),
    }
}

fn content_type(r: &lab_service_kit::client::Response) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn http_json<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.rest_producers();
        if producers.is_empty() {
            return Err(not_applicable(
                "no service of role recipe-api answers REST/JSON",
                "`serves = [\"http\"]` on your producer (the default for a `command` producer)",
            ));
        }
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let base = p.base()?;
            let (r, _) = ctx.get(&base, "/recipes/42").await?;
            rec.expect(
                format!("{svc}: GET /recipes/42 answers 200"),
                r.status == 200,
                "200",
                format!("status {}", r.status),
            );
            let ctype = content_type(&r);
            rec.expect(
                format!("{svc}: content-type is JSON"),
                ctype.starts_with("application/json"),
                "application/json",
                if ctype.is_empty() {
                    "none".into()
                } else {
                    ctype
                },
            );
            rec.hint("send the body with `Content-Type: application/json` (fastify's reply does so for objects)");
            let v = r.json().unwrap_or(Value::Null);
            let shape = contract::recipe_42(&v, "recipe", false).and_then(|()| {
                contract::at(&v, "recipe.steps").and_then(|s| {
                    s.is_string()
                        .then_some(())
                        .ok_or_else(|| "recipe.steps: not a string".into())
                })
            });
            rec.expect(
                format!("{svc}: the body holds recipe 42 with its steps and 2 ingredients"),
                shape.is_ok(),
                "{producer_pid, recipe: {id: 42, name: \"Chicken Tikka Masala\", steps, ingredients: [{id, name, quantity}] ×2}}",
                match &shape {
                    Ok(()) => v["recipe"].to_string(),
                    Err(e) => format!("{e}; the body: {v}"),
                },
            );
            let pid = contract::number_at(&v, "producer_pid");
            rec.expect(
                format!("{svc}: producer_pid is a number"),
                pid.is_ok(),
                "a whole number (process.pid)",
                match pid {
                    Ok(p) => p.to_string(),
                    Err(e) => e,
                },
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                lat.push(ctx.get(&base, "/recipes/42").await?.1);
            }
            rec.figure(format!("{svc} latency p50"), median_max_ms(lat).0, "ms");
            rec.figure(format!("{svc} response size"), r.body.len() as f64, "bytes");
        }
        Ok(())
    })
}

fn gzip<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.require_serving(
            Serve::Gzip,
            "add \"gzip\" to `serves` of a producer that compresses when the client sends `Accept-Encoding: gzip` (the book compresses in server-gzip.js and in HAProxy: see ch3.compression)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let url = format!("{}/recipes/42", p.base()?);
            let (plain, gz) = ctx.get_plain_and_gzip(&url).await?;
            let enc = |r: &lab_service_kit::client::Response| match super::content_encoding(r) {
                e if e.is_empty() => "none".to_owned(),
                e => e,
            };
            rec.expect(
                format!("{svc}: no Accept-Encoding, not compressed"),
                enc(&plain) == "none",
                "no content-encoding",
                format!("content-encoding {}", enc(&plain)),
            );
            rec.hint("compress only for clients whose Accept-Encoding names gzip");
            rec.expect(
                format!("{svc}: Accept-Encoding: gzip → gzip"),
                enc(&gz) == "gzip",
                "content-encoding gzip",
                format!("content-encoding {}", enc(&gz)),
            );
            let unzipped = gunzip(&gz.body);
            rec.check(
                format!("{svc}: the gzip body decodes"),
                unzipped.is_ok(),
                match &unzipped {
                    Ok(u) => format!("{} bytes decompressed", u.len()),
                    Err(e) => format!("{e:#}"),
                },
            );
            let same = unzipped
                .ok()
                .and_then(|u| serde_json::from_slice::<Value>(&u).ok())
                .map(|v| v["recipe"].clone());
            let want = plain.json().ok().map(|v| v["recipe"].clone());
            rec.check(
                format!("{svc}: decompressed JSON equals the plain JSON"),
                same.is_some() && same == want,
                "recipe compared",
            );
            rec.check(
                format!("{svc}: compressed bytes are fewer"),
                gz.body.len() < plain.body.len(),
                format!("{} gzip bytes vs {} plain", gz.body.len(), plain.body.len()),
            );
            rec.figure(
                format!("{svc} plain body"),
                plain.body.len() as f64,
                "bytes",
            );
            rec.figure(format!("{svc} gzip body"), gz.body.len() as f64, "bytes");
            rec.figure(
                format!("{svc} gzip / plain"),
                gz.body.len() as f64 / plain.body.len().max(1) as f64,
                "ratio",
            );
        }
        Ok(())
    })
}

/// A built-in recipe-api over TLS on a free port, with a certificate from a CA made for the
/// check in a temp dir: its process, the CA file, and the dir (removed when dropped).
async fn tls_recipe_api_helper()
-> anyhow::Result<(super::spawn::Spawned, std::path::PathBuf, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let ca = crate::tls::LabCa::ensure(dir.path())?;
    let issued = ca.server_cert("recipe-api")?;
    let (cert, key, ca_path) = (
        issued.cert.display().to_string(),
        issued.key.display().to_string(),
        ca.ca_cert(),
    );
    let ca_s = ca_path.display().to_string();
    let spawned = super::spawn::builtin(
        Builtin::RecipeApi,
        &[
            ("TLS_CERT", cert.as_str()),
            ("TLS_KEY", key.as_str()),
            ("TLS_CA", ca_s.as_str()),
        ],
    )
    .await?;
    Ok((spawned, ca_path, dir))
}

fn https<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let lab_https = ctx.serving(Serve::Https);
        let mut targets: Vec<(String, String, std::path::PathBuf)> = Vec::new();
        let mut _helper = None;
        if lab_https.is_empty() {
            if ctx.learner_plays(Builtin::RecipeApi) {
                return Err(not_applicable(
                    "no service of role recipe-api serves https",
                    "a producer with `serves = [\"https\"]` (the lab issues its certificate from its CA and hands it over as TLS_CERT and TLS_KEY)",
                ));
            }
            let (spawned, ca, dir) = tls_recipe_api_helper().await?;
            rec.subject(Subject::helper(
                "recipe-api",
                format!(
                    "the lab's built-in recipe-api over TLS (pid {}), started because no service of the lab serves https",
                    spawned.pid
                ),
            ));
            targets.push(("built-in recipe-api".into(), spawned.base.clone(), ca));
            _helper = Some((spawned, dir));
        } else {
            let ca = ctx.tls_ca.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "the lab serves https but has no CA file under {}",
                    ctx.tls_dir.display()
                )
            })?;
            for p in lab_https {
                rec.subject(p.subject());
                targets.push((p.service.clone(), p.base()?, ca.clone()));
            }
        }
        for (svc, base, ca) in targets {
            let trusting = lab_service_kit::client::Client::with_tls(
                lab_service_kit::tls::client_config(&ca)?,
            );
            let t0 = Instant::now();
            let r = trusting
                .get(&format!("{base}/recipes/42"), ctx.timeout)
                .await;
            let first = t0.elapsed();
            let shape = r.as_ref().map_err(|e| e.to_string()).and_then(|r| {
                if r.status != 200 {
                    return Err(format!("status {}", r.status));
                }
                contract::recipe_42(&r.json().unwrap_or(Value::Null), "recipe", false)
            });
            rec.expect(
                format!(
                    "{svc}: GET https://…/recipes/42, trusting only the lab CA, answers recipe 42"
                ),
                shape.is_ok(),
                "200 with recipe 42 over TLS",
                match shape {
                    Ok(()) => "recipe 42".to_owned(),
                    Err(e) => e,
                },
            );
            rec.hint(
                "serve TLS with the certificate and key the lab hands over as TLS_CERT and TLS_KEY",
            );
            let plain = format!("http://{}/recipes/42", super::host_port(&base));
            let p = ctx.client.get(&plain, Duration::from_secs(2)).await;
            rec.check(
                format!("{svc}: plain HTTP on the TLS port gets no answer"),
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
                format!("{svc}: a client trusting another CA refuses the certificate"),
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
                format!("{svc} first request incl. TLS handshake"),
                first.as_secs_f64() * 1e3,
                "ms",
            );
            rec.figure(
                format!("{svc} keep-alive latency p50"),
                median_max_ms(lat).0,
                "ms",
            );
        }
        Ok(())
    })
}

async fn gql(
    client: &lab_service_kit::client::Client,
    ctx: &Ctx,
    base: &str,
    body: Value,
) -> anyhow::Result<(u16, Value, Duration)> {
    let t0 = Instant::now();
    let r = client
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
        let producers = ctx.require_serving(
            Serve::Graphql,
            "a producer with `serves = [\"graphql\"]` answering POST /graphql on the contract's schema (the book's recipe-api/producer-graphql.js)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let client = tls_client(ctx, p)?;
            let base = p.base()?;
            let sink = json!({"query": KITCHEN_SINK, "variables": {"id": "42"}});
            let (s, v, _) = gql(&client, ctx, &base, sink.clone()).await?;
            rec.expect(
                format!("{svc}: kitchenSink answers 200"),
                s == 200,
                "200",
                format!("status {s}"),
            );
            let shape = contract::recipe_42(&v, "data.recipe", true);
            rec.expect(
                format!("{svc}: kitchenSink returns recipe 42 and its ingredients"),
                shape.is_ok(),
                "{data: {recipe: {id: \"42\", name, ingredients: [{name, quantity}] ×2}, pid}}",
                match &shape {
                    Ok(()) => v["data"]["recipe"].to_string(),
                    Err(e) => format!("{e}; the body: {v}"),
                },
            );
            rec.hint(
                "resolve `recipe(id: ID)` from the contract's schema (shared/graphql-schema.gql)",
            );
            let pid = contract::number_at(&v, "data.pid");
            rec.expect(
                format!("{svc}: kitchenSink returns the producer's pid"),
                pid.is_ok(),
                "data.pid, a whole number",
                pid.map_or_else(|e| e, |p| p.to_string()),
            );
            let (s, v, _) = gql(
                &client,
                ctx,
                &base,
                json!({"query": KITCHEN_SINK, "variables": {"id": UNKNOWN_ID.to_string()}}),
            )
            .await?;
            // The book's producer throws: HTTP 200 with an `errors` entry.
            let has_error = v["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.iter().all(|x| x["message"].is_string()));
            rec.expect(
                format!("{svc}: unknown id {UNKNOWN_ID} → HTTP 200 with a GraphQL error"),
                s == 200 && has_error,
                "200 {\"errors\": [{\"message\": …}]}",
                format!("status {s}: {}", truncate(&v.to_string(), 300)),
            );
            rec.hint("throw from the recipe resolver for an id other than 42; the GraphQL server turns it into an `errors` entry");
            let (_, v, _) = gql(
                &client,
                ctx,
                &base,
                json!({"query": "{ __schema { queryType { name } types { name } } }"}),
            )
            .await?;
            let types: Vec<&str> = v["data"]["__schema"]["types"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
                .unwrap_or_default();
            rec.expect(
                format!("{svc}: introspection lists Query, Recipe and Ingredient"),
                v["data"]["__schema"]["queryType"]["name"] == "Query"
                    && types.contains(&"Recipe")
                    && types.contains(&"Ingredient"),
                "types Query, Recipe, Ingredient",
                format!("{} types", types.len()),
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                lat.push(gql(&client, ctx, &base, sink.clone()).await?.2);
            }
            rec.figure(
                format!("{svc} kitchenSink latency p50"),
                median_max_ms(lat).0,
                "ms",
            );
        }
        Ok(())
    })
}

/// The TLS config of a gRPC call to `e` (none over plain HTTP/2).
fn grpc_tls(
    ctx: &Ctx,
    e: &Endpoint,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
    match (e.protocol, &ctx.tls_ca) {
        (Protocol::Http, _) => Ok(None),
        (Protocol::Https, Some(ca)) => Ok(Some(lab_service_kit::tls::client_config(ca)?)),
        (Protocol::Https, None) => {
            anyhow::bail!("`{}` serves TLS but the lab has no CA", e.service)
        }
    }
}

fn grpc<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.require_serving(
            Serve::Grpc,
            "a producer with `serves = [\"grpc\"]` serving recipe.RecipeService from the contract proto (the book's recipe-api/producer-grpc.js)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let addr = p
                .addrs
                .first()
                .ok_or_else(|| anyhow::anyhow!("`{svc}` has no instance"))?
                .clone();
            let tls = grpc_tls(ctx, p)?;
            let call = |path: &'static str, msg: Vec<u8>| {
                let (addr, tls) = (addr.clone(), tls.clone());
                async move { grpc_unary_on(&addr, path, &msg, ctx.timeout, tls).await }
            };
            let r = call(GET_RECIPE, contract::recipe_request(42)).await?;
            rec.expect(
                format!("{svc}: GetRecipe(42) is OK"),
                r.status == 0,
                "grpc-status 0",
                format!("grpc-status {} {}", r.status, r.message),
            );
            let decoded = contract::decode_recipe(&r.body);
            let shape = decoded
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|d| contract::recipe_42(&json!({"recipe": d.fields}), "recipe", false));
            rec.expect(
                format!("{svc}: GetRecipe(42) returns the recipe with 2 ingredients"),
                r.status == 0 && shape.is_ok(),
                "Recipe {id: 42, name: \"Chicken Tikka Masala\", ingredients ×2}",
                match (&decoded, &shape) {
                    (Ok(d), Ok(())) => Value::Object(d.fields.clone()).to_string(),
                    (_, Err(e)) => e.clone(),
                    (Err(e), _) => e.clone(),
                },
            );
            let m = call(GET_META, Vec::new()).await?;
            let pid = contract::decode_meta_pid(&m.body);
            rec.expect(
                format!("{svc}: GetMetaData returns a pid (field 2)"),
                m.status == 0 && matches!(pid, Ok(Some(p)) if p > 0),
                "Meta {pid > 0}",
                match pid {
                    Ok(Some(p)) => format!("grpc-status {}, pid {p}", m.status),
                    Ok(None) => format!("grpc-status {}, no pid field", m.status),
                    Err(e) => format!("grpc-status {}, {e}", m.status),
                },
            );
            // The book's producer answers an unknown id with a plain error: status 2
            // (UNKNOWN) and its message; any status but OK, with a message, keeps the contract.
            let nf = call(GET_RECIPE, contract::recipe_request(UNKNOWN_ID as i32)).await?;
            rec.expect(
                format!("{svc}: GetRecipe({UNKNOWN_ID}) is an error status with a message"),
                nf.status > 0 && !nf.message.is_empty(),
                "a non-OK grpc-status (e.g. 2 UNKNOWN or 5 NOT_FOUND) and a grpc-message",
                format!("grpc-status {}, message \"{}\"", nf.status, nf.message),
            );
            rec.hint(
                "call the callback with an Error for an id other than 42 (`cb(new Error(...))`)",
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                let t0 = Instant::now();
                call(GET_RECIPE, contract::recipe_request(42)).await?;
                lat.push(t0.elapsed());
            }
            rec.figure(
                format!("{svc} GetRecipe latency p50 (new connection each)"),
                median_max_ms(lat).0,
                "ms",
            );
            rec.figure(
                format!("{svc} GetRecipe message size"),
                r.body.len() as f64,
                "bytes",
            );
        }
        Ok(())
    })
}

/// What a consumer calling over `p` needs its producer to serve.
fn serve_for(p: TargetProtocol) -> Serve {
    match p {
        TargetProtocol::Http => Serve::Http,
        TargetProtocol::Https => Serve::Https,
        TargetProtocol::Graphql => Serve::Graphql,
        TargetProtocol::Grpc => Serve::Grpc,
    }
}

/// Check one consumer's `GET /` by the shape of its protocol; figures its chain latency.
async fn check_consumer(
    ctx: &Ctx,
    rec: &mut Record,
    who: &str,
    base: &str,
    p: TargetProtocol,
) -> anyhow::Result<()> {
    let (r, _) = ctx.get(base, "/").await?;
    let v = r.json().unwrap_or(Value::Null);
    let shape = if r.status == 200 {
        contract::consumer_answer(p, &v).map(|_| ())
    } else {
        Err(format!("status {}", r.status))
    };
    rec.expect(
        format!("{who} ({} consumer) returns recipe 42", p.as_str()),
        shape.is_ok(),
        contract::consumer_shape(p),
        match &shape {
            Ok(()) => truncate(&v.to_string(), 200),
            Err(e) => format!("{e}; the body: {}", r.text()),
        },
    );
    rec.hint(format!(
        "answer GET / with {}, the shape of the book's {} consumer",
        contract::consumer_shape(p),
        p.as_str()
    ));
    let mut lat = Vec::new();
    for _ in 0..SAMPLES {
        lat.push(ctx.get(base, "/").await?.1);
    }
    rec.figure(
        format!("{who} {} chain latency p50", p.as_str()),
        median_max_ms(lat).0,
        "ms",
    );
    Ok(())
}

fn consumers<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let consumers = ctx.require_consumers()?;
        let mut called = Vec::new();
        for c in &consumers {
            rec.subject(c.subject());
            let p = c.calls();
            called.push(p);
            check_consumer(ctx, rec, &c.service, &c.base()?, p).await?;
        }
        // The protocols the lab's producers serve that no consumer calls.
        let missing: Vec<(TargetProtocol, &Endpoint)> = [
            TargetProtocol::Http,
            TargetProtocol::Https,
            TargetProtocol::Graphql,
            TargetProtocol::Grpc,
        ]
        .into_iter()
        .filter(|p| !called.contains(p))
        .filter_map(|p| {
            // The consumers call GraphQL and gRPC over plain HTTP only (as the book's do).
            let plain_only = matches!(p, TargetProtocol::Graphql | TargetProtocol::Grpc);
            ctx.serving(serve_for(p))
                .into_iter()
                .find(|e| !plain_only || e.scheme() == "http")
                .map(|e| (p, e))
        })
        .collect();
        for (p, producer) in missing {
            if ctx.learner_plays(Builtin::WebApi) {
                rec.note(format!(
                    "no consumer calls {0} (`{1}` serves it): add one with `role = \"web-api\"`, `target_protocol = \"{0}\"`, `env = {{ TARGET = \"{1}\" }}`",
                    p.as_str(),
                    producer.service
                ));
                continue;
            }
            // Only built-in consumers here: one more of ours shows this producer's protocol.
            let target = super::host_port(&producer.base()?).to_owned();
            let ca = ctx.tls_ca.as_ref().map(|c| c.display().to_string());
            let mut env = vec![("TARGET", target.as_str()), ("TARGET_PROTOCOL", p.as_str())];
            if let (TargetProtocol::Https, Some(ca)) = (p, &ca) {
                env.push(("TLS_CA", ca.as_str()));
            }
            let helper = super::spawn::builtin(Builtin::WebApi, &env).await?;
            rec.subject(producer.subject());
            rec.subject(Subject::helper(
                "web-api",
                format!(
                    "the lab's built-in web-api calling {} over {} (pid {}), started because no consumer of the lab calls {}",
                    producer.service,
                    p.as_str(),
                    helper.pid,
                    p.as_str()
                ),
            ));
            check_consumer(
                ctx,
                rec,
                &format!("built-in web-api → {}", producer.service),
                &helper.base,
                p,
            )
            .await?;
        }
        Ok(())
    })
}

fn truncate(s: &str, n: usize) -> String {
    super::truncate(s, n)
}

/// "id, name" for a list of names; "none" when empty.
fn names(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The fields a GraphQL type reports by introspection.
async fn gql_type_fields(
    client: &lab_service_kit::client::Client,
    ctx: &Ctx,
    base: &str,
    ty: &str,
) -> anyhow::Result<Vec<String>> {
    let q = json!({"query": format!("{{ __type(name: \"{ty}\") {{ fields {{ name }} }} }}")});
    let (_, v, _) = gql(client, ctx, base, q).await?;
    Ok(v["data"]["__type"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn exactly(have: &[String], contract: &[&str]) -> (Vec<String>, Vec<String>) {
    let extra = have
        .iter()
        .filter(|h| !contract.contains(&h.as_str()))
        .cloned()
        .collect();
    let missing = contract
        .iter()
        .filter(|c| !have.iter().any(|h| h == *c))
        .map(|c| (*c).to_owned())
        .collect();
    (extra, missing)
}

fn serialization<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.playing(Builtin::RecipeApi);
        if producers.is_empty() {
            return Err(not_applicable(
                "no service plays recipe-api (the producer)",
                "[services.recipe-api] with `builtin = \"recipe-api\"`, or your producer's `command = [...]`",
            ));
        }
        let hint = "serialize what you mean to send: build the answer from the contract's fields, not from the stored object";
        let expected_recipe = format!(
            "recipe fields {}; ingredient fields {}",
            contract::RECIPE_FIELDS.join(", "),
            contract::INGREDIENT_FIELDS.join(", ")
        );
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let base = p.base()?;
            if p.rest() {
                let (r, _) = ctx.get(&base, "/recipes/42").await?;
                let v = r.json().unwrap_or(Value::Null);
                let (mut extra, mut missing) =
                    contract::extra_and_missing(&v["recipe"], &contract::RECIPE_FIELDS);
                for (i, ing) in v["recipe"]["ingredients"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let (e, m) = contract::extra_and_missing(ing, &contract::INGREDIENT_FIELDS);
                    extra.extend(e.into_iter().map(|f| format!("ingredients.{i}.{f}")));
                    missing.extend(m.into_iter().map(|f| format!("ingredients.{i}.{f}")));
                }
                rec.expect(
                    format!("{svc} REST: the recipe carries exactly the contract's fields"),
                    r.status == 200 && extra.is_empty() && missing.is_empty(),
                    expected_recipe.clone(),
                    format!(
                        "status {}; extra: {}; missing: {}",
                        r.status,
                        names(&extra),
                        names(&missing)
                    ),
                );
                rec.hint(hint);
            }
            if p.serves(Serve::Graphql) {
                let client = tls_client(ctx, p)?;
                let recipe = gql_type_fields(&client, ctx, &base, "Recipe").await?;
                let ingredient = gql_type_fields(&client, ctx, &base, "Ingredient").await?;
                let (mut extra, mut missing) = exactly(&recipe, &contract::RECIPE_FIELDS);
                let (e, m) = exactly(&ingredient, &contract::INGREDIENT_FIELDS);
                extra.extend(e.into_iter().map(|f| format!("Ingredient.{f}")));
                missing.extend(m.into_iter().map(|f| format!("Ingredient.{f}")));
                rec.expect(
                    format!("{svc} GraphQL: the schema's Recipe and Ingredient have exactly the contract's fields"),
                    extra.is_empty() && missing.is_empty(),
                    expected_recipe.clone(),
                    format!("extra: {}; missing: {}", names(&extra), names(&missing)),
                );
                rec.hint("serve the contract's schema file unchanged (shared/graphql-schema.gql)");
            }
            if p.serves(Serve::Grpc) {
                let addr = p.addrs.first().cloned().unwrap_or_default();
                let reply = grpc_unary_on(
                    &addr,
                    GET_RECIPE,
                    &contract::recipe_request(42),
                    ctx.timeout,
                    grpc_tls(ctx, p)?,
                )
                .await?;
                // Raw bytes: a generated decoder would drop unknown fields silently.
                let decoded = contract::decode_recipe(&reply.body);
                rec.expect(
                    format!("{svc} gRPC: the Recipe message has no field the proto lacks"),
                    reply.status == 0 && decoded.as_ref().is_ok_and(|d| d.unknown.is_empty()),
                    "fields 1-4 of Recipe, 1-3 of Ingredient",
                    match &decoded {
                        Ok(d) => format!(
                            "grpc-status {}, {} bytes; unknown fields: {}",
                            reply.status,
                            reply.body.len(),
                            names(&d.unknown)
                        ),
                        Err(e) => format!("grpc-status {}, undecodable: {e}", reply.status),
                    },
                );
                rec.hint(hint);
            }
            if !p.rest() && !p.serves(Serve::Graphql) && !p.serves(Serve::Grpc) {
                rec.note(format!("{svc} serves no protocol this scenario reads"));
            }
        }
        Ok(())
    })
}

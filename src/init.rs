//! `lab init [SECTION]`: a commented lab.toml, either the default lab (the lab's own services)
//! or one per book section for a reader's checkout of the book's code, whose files run as
//! `command` services with tcp health checks and the role each plays.
//!
//! The sections follow the book's layout: `recipe-api/` holds the producers, `web-api/` the
//! consumers, `shared/` the contract files; the files named here are the book's.

/// One service of a section: a file of the book's checkout.
struct Svc {
    name: &'static str,
    file: &'static str,
    /// `recipe-api` or `web-api`.
    role: &'static str,
    /// Producers: what the file serves.
    serves: &'static [&'static str],
    /// Consumers: how it calls its target, and which service that is.
    target_protocol: Option<&'static str>,
    target: Option<&'static str>,
    port: u16,
    /// Extra lines (already commented or TOML), placed after the service's keys.
    extra: &'static str,
}

/// A book section: its services, and what the lab adds around them.
pub struct Section {
    pub name: &'static str,
    pub title: &'static str,
    services: &'static [Svc],
    hub: &'static str,
    proxy: &'static str,
    notes: &'static [&'static str],
}

const fn producer(name: &'static str, file: &'static str, serves: &'static [&'static str]) -> Svc {
    Svc {
        name,
        file,
        role: "recipe-api",
        serves,
        target_protocol: None,
        target: None,
        port: 4000,
        extra: "",
    }
}

const fn consumer(
    name: &'static str,
    file: &'static str,
    target_protocol: Option<&'static str>,
    target: &'static str,
) -> Svc {
    Svc {
        name,
        file,
        role: "web-api",
        serves: &[],
        target_protocol,
        target: Some(target),
        port: 3000,
        extra: "",
    }
}

const HUB: &str =
    "[hub]                          # logs, metrics and traces (chapter 4): the book's ports\n";

pub const SECTIONS: &[Section] = &[
    Section {
        name: "ch1-http",
        title: "Sample Applications (chapter 1): producer-http-basic.js and consumer-http-basic.js",
        services: &[
            producer("recipe-api", "recipe-api/producer-http-basic.js", &["http"]),
            consumer(
                "web-api",
                "web-api/consumer-http-basic.js",
                None,
                "recipe-api",
            ),
        ],
        hub: "",
        proxy: "",
        notes: &[],
    },
    Section {
        name: "ch2-https",
        title: "Protocols › HTTPS / TLS (chapter 2): producer-https-basic.js and consumer-https-basic.js",
        services: &[
            Svc {
                extra: "protocol = \"https\"             # the lab issues its certificate from its CA (TLS_CERT, TLS_KEY)\n",
                ..producer(
                    "recipe-api",
                    "recipe-api/producer-https-basic.js",
                    &["https"],
                )
            },
            consumer(
                "web-api",
                "web-api/consumer-https-basic.js",
                Some("https"),
                "recipe-api",
            ),
        ],
        hub: "",
        proxy: "",
        notes: &[
            "The book's producer reads its key from recipe-api/tls/basic-private-key.key and its",
            "certificate from shared/tls/basic-certificate.cert, and its consumer trusts that file.",
            "`lab check ch2.https` trusts only the lab's CA, which makes both for you: read",
            "process.env.TLS_KEY and process.env.TLS_CERT in the producer, and process.env.TLS_CA",
            "in the consumer (Node also trusts NODE_EXTRA_CA_CERTS, which the lab sets). Or, after a",
            "first `lab up`, copy .lab/tls/recipe-api.key to recipe-api/tls/basic-private-key.key,",
            ".lab/tls/recipe-api.crt to shared/tls/basic-certificate.cert, and trust .lab/tls/ca.crt.",
        ],
    },
    Section {
        name: "ch2-graphql",
        title: "Protocols › GraphQL (chapter 2): producer-graphql.js and consumer-graphql.js",
        services: &[
            producer("recipe-api", "recipe-api/producer-graphql.js", &["graphql"]),
            consumer(
                "web-api",
                "web-api/consumer-graphql.js",
                Some("graphql"),
                "recipe-api",
            ),
        ],
        hub: "",
        proxy: "",
        notes: &[
            "The producer reads shared/graphql-schema.gql (the contract) and serves GraphiQL.",
        ],
    },
    Section {
        name: "ch2-grpc",
        title: "Protocols › RPC with gRPC (chapter 2): producer-grpc.js and consumer-grpc.js",
        services: &[
            producer("recipe-api", "recipe-api/producer-grpc.js", &["grpc"]),
            consumer(
                "web-api",
                "web-api/consumer-grpc.js",
                Some("grpc"),
                "recipe-api",
            ),
        ],
        hub: "",
        proxy: "",
        notes: &["Both read shared/grpc-recipe.proto (the contract)."],
    },
    Section {
        name: "ch3-cluster",
        title: "Scaling › The Cluster Module (chapter 3): producer-http-basic-master.js",
        services: &[Svc {
            extra: "workers = 2                    # the master forks 2 (lab check ch3.cluster holds it to that)\n# respawn = true               # once you uncomment cluster.fork() in its exit handler\n",
            ..producer(
                "recipe-api",
                "recipe-api/producer-http-basic-master.js",
                &["http"],
            )
        }],
        hub: "",
        proxy: "",
        notes: &[],
    },
    Section {
        name: "ch3-haproxy",
        title: "Scaling › Reverse Proxies with HAProxy (chapter 3): consumer-http-healthendpoint.js ×2 behind a proxy",
        services: &[
            producer("recipe-api", "recipe-api/producer-http-basic.js", &["http"]),
            Svc {
                port: 3001,
                extra: "replicas = 2                   # web-api-1 and web-api-2 on 3001 and 3002, as in load-balance.cfg\n",
                ..consumer(
                    "web-api",
                    "web-api/consumer-http-healthendpoint.js",
                    None,
                    "recipe-api",
                )
            },
        ],
        hub: "",
        proxy: "[proxy]\nengine = \"builtin\"             # or \"haproxy\": the real one, rendered from this section\n\n[proxy.frontends.web]\nservice = \"web-api\"\nport = 3000\nstats_uri = \"/admin?stats\"\ncheck = { path = \"/health\", interval = \"2s\" }   # option httpchk GET /health\n",
        notes: &[],
    },
    Section {
        name: "ch4-logs",
        title: "Observability › Logging with ELK (chapter 4): consumer-http-logs.js and logstash.js",
        services: &[
            producer("recipe-api", "recipe-api/producer-http-basic.js", &["http"]),
            consumer(
                "web-api",
                "web-api/consumer-http-logs.js",
                None,
                "recipe-api",
            ),
        ],
        hub: HUB,
        proxy: "",
        notes: &[
            "logstash.js sends to process.env.LOGSTASH: the lab points it at its hub (`lab logs --query`).",
        ],
    },
    Section {
        name: "ch4-metrics",
        title: "Observability › Metrics with Graphite, StatsD, and Grafana (chapter 4): consumer-http-metrics.js",
        services: &[
            producer("recipe-api", "recipe-api/producer-http-basic.js", &["http"]),
            consumer(
                "web-api",
                "web-api/consumer-http-metrics.js",
                None,
                "recipe-api",
            ),
        ],
        hub: "[hub]\nstatsd_port = 8125             # consumer-http-metrics.js sends to localhost:8125, whatever STATSD says\nflush_interval = \"10s\"\n",
        proxy: "",
        notes: &[],
    },
    Section {
        name: "ch4-tracing",
        title: "Observability › Distributed Request Tracing with Zipkin (chapter 4): producer-http-zipkin.js and consumer-http-zipkin.js",
        services: &[
            producer(
                "recipe-api",
                "recipe-api/producer-http-zipkin.js",
                &["http"],
            ),
            consumer(
                "web-api",
                "web-api/consumer-http-zipkin.js",
                None,
                "recipe-api",
            ),
        ],
        hub: HUB,
        proxy: "",
        notes: &[
            "Both send spans to process.env.ZIPKIN: the lab points it at its hub (the dashboard's /traces).",
        ],
    },
    Section {
        name: "ch2-all",
        title: "Protocols (chapter 2): one producer and one consumer per protocol, side by side",
        services: &[
            producer("recipe-api", "recipe-api/producer-http-basic.js", &["http"]),
            Svc {
                port: 4001,
                extra: "protocol = \"https\"\n",
                ..producer(
                    "recipe-https",
                    "recipe-api/producer-https-basic.js",
                    &["https"],
                )
            },
            Svc {
                port: 4002,
                ..producer(
                    "recipe-graphql",
                    "recipe-api/producer-graphql.js",
                    &["graphql"],
                )
            },
            Svc {
                port: 4003,
                ..producer("recipe-grpc", "recipe-api/producer-grpc.js", &["grpc"])
            },
            consumer(
                "web-api",
                "web-api/consumer-http-basic.js",
                None,
                "recipe-api",
            ),
            Svc {
                port: 3001,
                ..consumer(
                    "web-https",
                    "web-api/consumer-https-basic.js",
                    Some("https"),
                    "recipe-https",
                )
            },
            Svc {
                port: 3002,
                ..consumer(
                    "web-graphql",
                    "web-api/consumer-graphql.js",
                    Some("graphql"),
                    "recipe-graphql",
                )
            },
            Svc {
                port: 3003,
                ..consumer(
                    "web-grpc",
                    "web-api/consumer-grpc.js",
                    Some("grpc"),
                    "recipe-grpc",
                )
            },
        ],
        hub: "",
        proxy: "",
        notes: &["See `lab init ch2-https` for the TLS files."],
    },
];

/// The section called `name`.
pub fn section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.name == name)
}

/// The default lab, as the repository ships it.
pub const DEFAULT: &str = include_str!("../lab.toml");

/// The lab.toml of a section.
pub fn render(s: &Section) -> String {
    let mut out = format!(
        "# lab.toml for {}\n# Written by `lab init {}`. Keep it at the top of your checkout of the book's code\n# (the folder holding recipe-api/ and web-api/), then:\n#   lab up        start every service below (Ctrl-C stops; `lab up --detach` leaves it running)\n#   lab check     hold your code to the book's contract, chapter by chapter\n#   lab check --watch   run the checks again whenever you save a file\n",
        s.title, s.name
    );
    for n in s.notes {
        out.push_str(&format!("# {n}\n"));
    }
    out.push_str(&format!("name = \"{}\"\n", s.name));
    for v in s.services {
        out.push_str(&format!(
            "\n[services.{}]\ncommand = [\"node\", \"{}\"]   # your file, run from this folder with HOST, PORT, TARGET set\n",
            v.name, v.file
        ));
        let what = if v.role == "recipe-api" {
            "a producer"
        } else {
            "a consumer"
        };
        out.push_str(&format!(
            "role = \"{}\"{}# {what}\n",
            v.role,
            pad(v.role.len() + 9)
        ));
        if !v.serves.is_empty() {
            let list = v
                .serves
                .iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let line = format!("serves = [{list}]");
            out.push_str(&format!(
                "{line}{}# what it answers on its port\n",
                pad(line.len())
            ));
        }
        if let Some(tp) = v.target_protocol {
            let line = format!("target_protocol = \"{tp}\"");
            out.push_str(&format!("{line}{}# how it calls TARGET\n", pad(line.len())));
        }
        if let Some(t) = v.target {
            let line = format!("env = {{ TARGET = \"{t}\" }}");
            out.push_str(&format!(
                "{line}{}# becomes that service's host:port\n",
                pad(line.len())
            ));
        }
        let line = format!("port = {}", v.port);
        out.push_str(&format!("{line}{}# the book's port\n", pad(line.len())));
        out.push_str(v.extra);
        out.push_str(
            "health = { check = \"tcp\" }     # the book's services have no /health route\n",
        );
    }
    if !s.proxy.is_empty() {
        out.push('\n');
        out.push_str(s.proxy);
    }
    if !s.hub.is_empty() {
        out.push('\n');
        out.push_str(s.hub);
    }
    out
}

/// Spaces to column 31, where the comments start.
fn pad(len: usize) -> String {
    " ".repeat(31usize.saturating_sub(len).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_a_valid_lab_of_the_books_files_with_roles_and_tcp_checks() {
        for s in SECTIONS {
            let text = render(s);
            let cfg = crate::config::parse(&text, std::path::Path::new("/x/lab.toml"), "lab.toml")
                .unwrap_or_else(|e| panic!("lab init {}:\n{e}\n{text}", s.name));
            for svc in &cfg.services {
                assert!(svc.role.is_some(), "{}: {} plays a role", s.name, svc.name);
                assert_eq!(
                    svc.health.check,
                    lab_supervisor::HealthCheck::Tcp,
                    "{}",
                    s.name
                );
                let crate::config::Run::Command { argv, .. } = &svc.run else {
                    panic!("{}: {} is a command", s.name, svc.name)
                };
                assert_eq!(argv[0], "node");
            }
        }
        let g = render(section("ch2-graphql").unwrap());
        assert!(
            g.contains("command = [\"node\", \"recipe-api/producer-graphql.js\"]"),
            "{g}"
        );
        assert!(
            g.contains("command = [\"node\", \"web-api/consumer-graphql.js\"]"),
            "{g}"
        );
        assert!(g.contains("target_protocol = \"graphql\""), "{g}");
        let names: std::collections::HashSet<_> = SECTIONS.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SECTIONS.len());
        crate::config::parse(DEFAULT, std::path::Path::new("/x/lab.toml"), "lab.toml").unwrap();
    }
}

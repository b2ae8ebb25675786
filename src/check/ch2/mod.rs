//! Chapter 2, Protocols: REST/JSON, gzip, HTTPS, GraphQL and gRPC, the consumers of each, and
//! the dangers of serializing POJOs, held to the book's contract. One file per section; [`common`]
//! holds what several use (clients, calls, text helpers).

mod common;
mod consumers;
mod graphql;
mod grpc;
mod http;
mod https;
mod serialization;

use super::scenario::Scenario;
use consumers::*;
use graphql::*;
use grpc::*;
use http::*;
use https::*;
use serialization::*;

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

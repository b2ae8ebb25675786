//! Chapter 4, Observability: environments, logs (ELK), metrics (Graphite and StatsD), tracing
//! (Zipkin), health checks and alerting (Cabot), each against the services lab.toml declares and
//! the lab's hub. One file per section; [`hub`] holds the queries they all make of the hub;
//! [`faults`] the scenarios that break something on purpose (issue 18).

mod faults;
mod health;
mod hub;
mod logs;
mod metrics;
mod traces;

use super::scenario::Scenario;
use health::*;
use logs::*;
use metrics::*;
use traces::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch4.environment",
            chapter: 4,
            section: "Environments",
            summary: "every service's log documents carry the environment lab.toml gives it (NODE_ENV)",
            run: environment,
            proxy: false,
        },
        Scenario {
            name: "ch4.logs",
            chapter: 4,
            section: "Logging with ELK",
            summary: "a request yields request-incoming and request-outgoing logs, /error a request-failure with a stack, all found by query",
            run: logs,
            proxy: false,
        },
        Scenario {
            name: "ch4.metrics",
            chapter: 4,
            section: "Metrics with Graphite, StatsD, and Grafana",
            summary: "N requests and M failures move web-api's StatsD counters and timers by exactly N and M",
            run: metrics,
            proxy: false,
        },
        Scenario {
            name: "ch4.health",
            chapter: 4,
            section: "Health Checks",
            summary: "recipe-api's /health goes OK → DEGRADED (Redis stopped) → DOWN (PostgreSQL stopped) → OK, probed for real",
            run: health,
            proxy: false,
        },
        Scenario {
            name: "ch4.alerting",
            chapter: 4,
            section: "Alerting with Cabot",
            summary: "a rule on web-api's 500s fires within its window while /error is hammered, and resolves after",
            run: alerting,
            proxy: false,
        },
        Scenario {
            name: "ch4.tracing",
            chapter: 4,
            section: "Distributed Request Tracing with Zipkin",
            summary: "one request is one trace of ≥3 spans across both services, each span's parent the one that called it",
            run: tracing,
            proxy: false,
        },
        Scenario {
            name: "ch4.pause",
            chapter: 4,
            section: "Health Checks",
            summary: "a paused (SIGSTOP) instance fails its health check, the proxy takes it out, and it is back in rotation after resume",
            run: faults::pause,
            proxy: true,
        },
        Scenario {
            name: "ch4.fault-alert",
            chapter: 4,
            section: "Alerting with Cabot",
            summary: "status 500 on half of what a consumer's upstream answers (a fault edge): its 5xx alert fires, a trace carries the fault's tag, the logs have the fault; all resolve after clear",
            run: faults::fault_alert,
            proxy: false,
        },
    ]
}

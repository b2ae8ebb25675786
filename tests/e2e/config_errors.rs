//! A bad lab.toml, one per class of error: `lab.toml:LINE:COL: message`, a hint, exit 2,
//! nothing started.

use crate::util::*;

/// Run `lab up --detach` on `toml`; assert exit 2, that `want` (a `lab.toml:L:C: ...` line) is
/// printed, and that nothing started.
fn rejects(toml: &str, want: &str) -> String {
    let lab = LabDir::new(BIN, toml);
    let r = lab.run(&["up", "--detach"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains(want), "want {want:?} in:\n{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "no hint in:\n{}", r.stderr);
    assert!(!lab.state_file().exists(), "a state file was written");
    assert!(
        !lab.path().join(".lab/logs").exists(),
        "something was started"
    );
    r.stderr
}

const OK_SERVICE: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\nport = 0\n";

#[test]
fn unknown_key_suggests_the_right_one() {
    let err = rejects(
        &format!("{OK_SERVICE}replica = 2\n"),
        "lab.toml:4:1: unknown field `replica`",
    );
    assert!(err.contains("did you mean `replicas`?"), "{err}");
}

#[test]
fn wrong_type() {
    rejects(
        &format!("{OK_SERVICE}replicas = \"two\"\n"),
        "lab.toml:4:12: invalid type: string \"two\", expected u32",
    );
}

#[test]
fn unknown_builtin_value() {
    let err = rejects(
        "[services.a]\nbuiltin = \"recipe-apii\"\n",
        "lab.toml:2:11: unknown variant `recipe-apii`",
    );
    assert!(err.contains("did you mean `recipe-api`?"), "{err}");
}

#[test]
fn dangling_depends_on() {
    let err = rejects(
        &format!("{OK_SERVICE}depends_on = [\"recipe-apx\"]\n"),
        "lab.toml:4:15: `recipe-api` depends on `recipe-apx`",
    );
    assert!(err.contains("did you mean `recipe-api`?"), "{err}");
}

#[test]
fn dangling_target() {
    rejects(
        &format!(
            "{OK_SERVICE}[services.web-api]\nbuiltin = \"web-api\"\nenv = {{ TARGET = \"kitchen\" }}\n"
        ),
        "lab.toml:6:18: TARGET \"kitchen\" names no service of this lab",
    );
}

#[test]
fn dependency_cycle() {
    let toml = "[services.a]\nbuiltin = \"recipe-api\"\ndepends_on = [\"b\"]\n[services.b]\nbuiltin = \"web-api\"\nenv = { TARGET = \"a\" }\n";
    let err = rejects(toml, "lab.toml:");
    assert!(err.contains("dependency cycle: a → b → a"), "{err}");
}

#[test]
fn duplicate_ports() {
    let toml = "[services.a]\nbuiltin = \"recipe-api\"\nport = 4100\nreplicas = 2\n[services.b]\nbuiltin = \"recipe-api\"\nport = \"4101-4102\"\n";
    rejects(toml, "lab.toml:7:8: port 4101 of `b` is also a port of `a`");
}

#[test]
fn bad_duration_and_reserved_env_are_all_reported_at_once() {
    let toml = format!(
        "{OK_SERVICE}env = {{ PORT = \"1\" }}\n[services.recipe-api.health]\ntimeout = \"soon\"\n"
    );
    let err = rejects(&toml, "lab.toml:4:9: `PORT` is set by the lab");
    assert!(
        err.contains("lab.toml:6:11: invalid duration \"soon\""),
        "{err}"
    );
    assert!(
        err.contains("2 errors in lab.toml; nothing was started"),
        "{err}"
    );
}

#[test]
fn toml_syntax_error() {
    rejects("[services.a\nbuiltin = 1\n", "lab.toml:1:");
}

#[test]
fn hub_and_alert_mistakes_are_all_reported() {
    let toml = format!(
        "{OK_SERVICE}[hub]\nflush_interval = \"100ms\"\nnamespace = \"legasy\"\nlogstash = \"nowhere\"\n\
         [alerts.a]\nmetric = \"sumSeries(a.b\"\ncheck = \"=>\"\nvalue = 1\n\
         [alerts.b]\nhealth = \"recipe-apx\"\n\
         [alerts.c]\nhttp = \"http://x/\"\nmetric = \"a.b\"\n"
    );
    let err = rejects(
        &toml,
        "lab.toml:5:18: the flush interval is shorter than one second",
    );
    for want in [
        "lab.toml:6:13: unknown StatsD namespace \"legasy\"",
        "did you mean `legacy`?",
        "lab.toml:7:12: logstash \"nowhere\" is not `host:port`",
        "lab.toml:9:10: metric \"sumSeries(a.b\" is not a Graphite target",
        "lab.toml:10:9: check \"=>\" is not one of > >= < <= ==",
        "lab.toml:13:10: alert `b` watches `recipe-apx`, which is not a service of this lab",
        "did you mean `recipe-api`?",
        "lab.toml:14:9: alert `c` needs exactly one of `metric`, `http` and `health`",
    ] {
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
    // Alert rules without a hub.
    rejects(
        &format!("{OK_SERVICE}[alerts.x]\nhealth = \"recipe-api\"\n"),
        "lab.toml:4:9: alert rules need the hub, and this lab has no [hub]",
    );
}

#[test]
fn usage_errors_exit_2_printed_once_and_failures_exit_1() {
    let lab = LabDir::new(BIN, OK_SERVICE);
    for (args, want) in [
        (&["serve", "hub"][..], "`lab serve hub` needs --config FILE"),
        (
            &["load", "http://127.0.0.1:1/", "-H", "no-colon"][..],
            "is not `Name: value`",
        ),
        (&["check", "ch9.nothing"][..], "ch9.nothing"),
        (
            &["-f", "missing.toml", "up"][..],
            "cannot read missing.toml",
        ),
    ] {
        let r = lab.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r}");
        assert_eq!(
            r.stderr.matches(want).count(),
            1,
            "{args:?}: printed once:\n{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("Error:") && !r.stderr.contains("backtrace"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // A failure that is not the user's input: exit 1, the chain once.
    let r = lab.run(&["serve", "hub", "--config", "/nonexistent/hub.json"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.stderr.matches("lab: error:").count(), 1, "{r}");
}

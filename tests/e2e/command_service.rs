//! A learner's own program (`command = [...]`) is supervised like a built-in service and held
//! to the book's contract by `lab check`.

use crate::util::*;

/// The book's producer (producer-http-basic.js), in Python so it runs on any machine here:
/// same environment, same contract (404 {"error":"not_found"} for any other id, numeric or not).
const PRODUCER: &str = r#"
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.send(200, "OK", "text/plain")
        parts = self.path.split("/")
        if len(parts) == 3 and parts[1] == "recipes" and parts[2] == "42":
            return self.send(200, json.dumps({"producer_pid": os.getpid(), "recipe": {"id": 42,
                "name": "Chicken Tikka Masala", "steps": "Throw it in a pot...", "ingredients": [
                {"id": 1, "name": "Chicken", "quantity": "1 lb"}, {"id": 2, "name": "Sauce", "quantity": "2 cups"}]}}))
        self.send(404, json.dumps({"error": "not_found"}))
    def send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)

print("producer listening on", os.environ["HOST"], os.environ["PORT"], "env", os.environ["NODE_ENV"], flush=True)
HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
"#;

const LAB: &str = r#"
name = "learner"
environment = "production"

[services.recipe-api]
command = ["python3", "-u", "producer.py"]
replicas = 1
restart = "always"

[services.web-api]
builtin = "web-api"
env = { TARGET = "recipe-api" }
"#;

#[test]
fn command_service_runs_under_the_lab_is_restarted_and_checked() {
    if !require(
        "python3",
        lab_testkit::has_program("python3"),
        "the learner's producer is a Python script",
    ) {
        return;
    }
    let lab = LabDir::new(BIN, LAB);
    lab.write("producer.py", PRODUCER);
    let inst = up_detached(&lab, 2);
    let producer = inst
        .iter()
        .find(|i| i["service"] == "recipe-api")
        .unwrap()
        .clone();

    // It got the book's environment.
    let logs = lab.run(&["logs", "recipe-api"]);
    let port = producer["address"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        logs.stdout.contains(&format!(
            "producer listening on 127.0.0.1 {port} env production"
        )),
        "{logs}"
    );

    // The chapter 1 scenarios hold it to the book's contract, through our web-api.
    let check = lab.run(&["check", "ch1", "--json"]);
    assert_eq!(check.code, 0, "{check}");

    // Killed, it is restarted like a built-in instance.
    let back = kill_and_wait_restart(&lab, "recipe-api", 1);
    assert_eq!(back["restarts"], 1);

    let before = pids_and_addrs(&lab);
    assert_eq!(lab.run(&["down"]).code, 0);
    assert_all_gone(&before);
}

#[test]
fn a_command_that_never_gets_healthy_fails_up_and_stops_the_rest() {
    let lab = LabDir::new(
        BIN,
        r#"
[services.recipe-api]
builtin = "recipe-api"
[services.broken]
command = ["sh", "-c", "echo about to fail; exit 3"]
depends_on = ["recipe-api"]
"#,
    );
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 1, "{up}");
    assert!(
        up.stdout
            .contains("broken#1 exited before it became healthy (exit 3)"),
        "{up}"
    );
    assert!(
        up.stdout.contains("about to fail"),
        "the log tail is shown: {up}"
    );
    assert!(up.stdout.contains("recipe-api#1 stopped"), "{up}");
    assert!(!lab.state_file().exists());
}

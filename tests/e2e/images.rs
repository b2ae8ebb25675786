//! `lab images build` against this machine's real Docker engine: the image imports without a
//! registry, holds only the binary and its libraries, and runs the services.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// Removes the test's containers (by label) even when an assertion fails.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=lab.test={}", self.0),
        ]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker(&["rm", "-f", id]);
        }
    }
}

#[test]
fn the_lab_image_is_built_without_a_registry_and_runs_recipe_api() {
    let engine = docker(&["version", "--format", "{{.Server.Version}}"])
        .status
        .success();
    if !require(
        "a Docker engine",
        engine,
        "the images test talks to the real engine",
    ) {
        return;
    }
    let lab = LabDir::new(
        BIN,
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\nport = 0\n",
    );
    let r = lab.run(&["images", "build"]);
    assert_eq!(r.code, 0, "{r}");
    let v = env!("CARGO_PKG_VERSION");
    let reference = format!("lab/lab:{v}");
    let recipe_image = format!("lab/recipe-api:{v}");
    for image in [&reference, &recipe_image, &format!("lab/web-api:{v}")] {
        assert!(r.stdout.contains(image.as_str()), "{image} missing: {r}");
    }
    // The same two layers under all three (libraries, then the binary): stored once.
    let layers: Vec<String> = ["lab", "recipe-api", "web-api"]
        .iter()
        .map(|i| {
            let out = docker(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                &format!("lab/{i}:{v}"),
            ]);
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();
    assert!(
        layers.iter().all(|l| l == &layers[0]) && layers[0].matches("sha256:").count() == 2,
        "{layers:?}"
    );
    assert!(
        r.stdout.contains("libc.so.6"),
        "the binary's libraries go in with it: {r}"
    );
    // Minimal: the binary (debug info stripped) and a few libraries, nothing else.
    let size = docker(&["image", "inspect", "--format", "{{.Size}}", &reference]);
    let bytes: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(bytes < 200_000_000, "{bytes} bytes");

    let label = format!("t{}", std::process::id());
    let _sweep = Sweep(label.clone());
    // The binary runs in the image: a probe of a closed port exits 1 (not 125/127).
    let probe = docker(&[
        "run",
        "--rm",
        "-l",
        &format!("lab.test={label}"),
        &reference,
        "probe",
        "http://127.0.0.1:9/",
        "--timeout",
        "1s",
    ]);
    assert_eq!(
        probe.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    // recipe-api from its own image (entry point and environment baked in), on a published
    // loopback port.
    let run = docker(&[
        "run",
        "-d",
        "-l",
        &format!("lab.test={label}"),
        "-p",
        "127.0.0.1::4000",
        &recipe_image,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    let port = docker(&["port", &id, "4000/tcp"]);
    let addr = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let body = poll(DEADLINE, Duration::from_millis(50), || {
        let (status, body) = http_get(&addr, "/recipes/42").ok()?;
        (status == 200).then_some(body)
    })
    .expect("recipe-api in the container answers");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["recipe"]["id"], 42);
    assert_eq!(
        v["producer_pid"], 1,
        "the service is the container's first process"
    );
}

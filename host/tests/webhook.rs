//! `lkguard serve` for real: the binary on loopback with certificates from
//! rcgen, real HTTPS requests from reqwest trusting the test CA.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A serving certificate for 127.0.0.1 signed by `ca`, written to `dir`.
fn serving_cert(ca: &Ca, dir: &Path) -> (PathBuf, PathBuf) {
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    // Written aside and renamed in, as the kubelet swaps a Secret volume.
    std::fs::write(dir.join(".tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join(".tls.key"), key.serialize_pem()).unwrap();
    std::fs::rename(dir.join(".tls.crt"), &c).unwrap();
    std::fs::rename(dir.join(".tls.key"), &k).unwrap();
    (c, k)
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    dir: PathBuf,
    ca: Ca,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    start_with(extra, &cache_dir(), Stdio::null())
}

fn start_with(extra: &[&str], cache: &Path, stderr: Stdio) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ca = ca("lkguard test CA");
    let (cert, key) = serving_cert(&ca, &path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lkguard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(extra)
        .current_dir(&path)
        .env("LKGUARD_CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("lkguard serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        url,
        _dir: dir,
        dir: path,
        ca,
    }
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// An AdmissionReview as the API server sends it.
fn review(operation: &str, object: Option<&Value>, dry_run: bool) -> Value {
    let obj = object.cloned().unwrap_or(Value::Null);
    let api = obj["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    let kind = obj["kind"].as_str().unwrap_or("ConfigMap");
    let resource = format!("{}s", kind.to_lowercase());
    let mut request = json!({
        "uid": format!("uid-{}-{}", operation, obj["metadata"]["name"].as_str().unwrap_or("x")),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": obj["metadata"]["name"].as_str().unwrap_or("x"),
        "namespace": obj["metadata"]["namespace"].as_str().unwrap_or("memql"),
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller", "groups": ["system:serviceaccounts"]},
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    });
    match operation {
        "DELETE" => request["oldObject"] = obj,
        "UPDATE" => {
            request["object"] = obj.clone();
            request["oldObject"] = obj;
        }
        _ => request["object"] = obj,
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

fn objects_of(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).ok()?;
            v.get("kind").is_some().then_some(v)
        })
        .collect()
}

fn find(file: &str, kind: &str, name: &str) -> Value {
    objects_of(file)
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} not in {file}"))
}

async fn post(c: &reqwest::Client, s: &Server, body: &Value) -> Value {
    let r = c
        .post(format!("{}/validate", s.url))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Rule ids in a denial message or warnings, sorted.
async fn metrics(c: &reqwest::Client, s: &Server) -> String {
    c.get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn rule_ids(response: &Value) -> Vec<String> {
    let mut text = response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for w in response["response"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        text.push_str("; ");
        text.push_str(w.as_str().unwrap_or_default());
    }
    let mut ids: Vec<String> = text
        .split("; ")
        .filter_map(|p| p.split_once(": ").map(|(r, _)| r.to_string()))
        .filter(|r| r.contains('/'))
        .collect();
    ids.sort();
    ids
}

const GOOD: &str = "fixtures/rendered/staging.yaml";

/// With an empty cache, a child process compiles the policies into it and
/// exits, and the server maps them from there: it never holds what Cranelift
/// allocated (a cold server idled at 78-90 MiB RSS, a warm one at 20).
#[tokio::test(flavor = "multi_thread")]
async fn a_cold_start_compiles_in_a_child_that_fills_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = start_with(&[], cache.path(), Stdio::from(log.reopen().unwrap()));
    let compiled = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".cwasm")
        })
        .count();
    assert_eq!(compiled, 1, "the embedded set is one component");
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        log.contains("policies compiled into the cache by a child process"),
        "{log}"
    );
    let c = client(&s.ca.pem);
    let object = find(GOOD, "Deployment", "livekit");
    let answer = post(&c, &s, &review("CREATE", Some(&object), false)).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_rule_denies_its_mistake_and_allows_the_good_object() {
    let s = start(&[]);
    let c = client(&s.ca.pem);
    let cases = [
        (
            "fixtures/rendered/bad/use-external-ip-true.yaml",
            "ConfigMap",
            "livekit-config",
            "livekit/use-external-ip",
        ),
        (
            "fixtures/rendered/bad/node-ip-host-ip-fieldref.yaml",
            "Deployment",
            "livekit",
            "livekit/node-ip",
        ),
        (
            "fixtures/rendered/bad/image-digest-tag-only.yaml",
            "Deployment",
            "livekit",
            "livekit/image-digest",
        ),
        (
            "fixtures/rendered/bad/secrets-source-literal-api-key.yaml",
            "Deployment",
            "voice-agent",
            "livekit/secrets-source",
        ),
    ];
    for (file, kind, name, rule) in cases {
        let bad = post(
            &c,
            &s,
            &review("CREATE", Some(&find(file, kind, name)), false),
        )
        .await;
        assert_eq!(bad["response"]["allowed"], false, "{file}: {bad:#}");
        assert_eq!(bad["response"]["uid"], format!("uid-CREATE-{name}"));
        let message = bad["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{rule}: ")), "{file}: {message}");
        assert!(message.contains(" (/"), "names the path: {message}");
        let good = post(
            &c,
            &s,
            &review("UPDATE", Some(&find(GOOD, kind, name)), false),
        )
        .await;
        assert_eq!(good["response"]["allowed"], true, "{kind} {name}: {good:#}");
        assert_eq!(good["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(good["kind"], "AdmissionReview");
    }
    // rtc-service needs the livekit Deployment to know which Service is the
    // media one: at admission it sees a lone Service and skips (README).
    let lone = post(
        &c,
        &s,
        &review(
            "CREATE",
            Some(&find(
                "fixtures/rendered/bad/rtc-service-cluster-policy.yaml",
                "Service",
                "livekit-rtc",
            )),
            false,
        ),
    )
    .await;
    assert_eq!(lone["response"]["allowed"], true, "{lone:#}");
    // No secret value in any answer.
    let bad = post(
        &c,
        &s,
        &review(
            "CREATE",
            Some(&find(
                "fixtures/rendered/bad/secrets-source-literal-api-key.yaml",
                "Deployment",
                "voice-agent",
            )),
            false,
        ),
    )
    .await;
    for planted in PLANTED_SECRETS {
        assert!(!bad.to_string().contains(planted));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_dry_run_and_unknown_kinds() {
    let s = start(&[]);
    let c = client(&s.ca.pem);
    let bad = find(
        "fixtures/rendered/bad/image-digest-tag-only.yaml",
        "Deployment",
        "livekit",
    );
    let deleted = post(&c, &s, &review("DELETE", Some(&bad), false)).await;
    assert_eq!(deleted["response"]["allowed"], true);
    let dry = post(&c, &s, &review("CREATE", Some(&bad), true)).await;
    assert_eq!(
        dry["response"]["allowed"], false,
        "dryRun evaluates the same"
    );
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "memql"}, "spec": {"image": "livekit/livekit-server:latest"}});
    let r = post(&c, &s, &review("CREATE", Some(&unknown), false)).await;
    assert_eq!(r["response"]["allowed"], true, "{r:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_http_errors() {
    let s = start(&[]);
    let c = client(&s.ca.pem);
    let url = format!("{}/validate", s.url);
    let r = c.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().starts_with("not JSON"));
    let mut wrong = review("CREATE", Some(&find(GOOD, "Service", "livekit-rtc")), false);
    wrong["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let r = c.post(&url).json(&wrong).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("admission.k8s.io/v1beta1"));
    let big = vec![b' '; (3 << 20) + 1];
    let r = c.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    // Still serving.
    let r = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/readyz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = metrics(&c, &s).await;
    assert!(
        metrics.contains("lkguard_admission_requests_total{verdict=\"invalid\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_fails_denies_naming_it_and_the_server_goes_on() {
    // Real hostile components next to the bundle: one never returns, one
    // panics (a wasm trap), one allocates without end, one sleeps for hours,
    // one returns a 10 MB message, one tries files, env and sockets, one
    // speaks another contract version; and a corrupt file.
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let mut components: Vec<_> = [
        "loop",
        "trap",
        "memory-bomb",
        "sleep",
        "big-message",
        "escape",
        "wrong-wit",
    ]
    .into_iter()
    .map(hostile)
    .collect();
    components.push(corrupt.clone());
    let wrong_wit = format!(
        "could not evaluate policy {}: it could not be loaded: the component does not implement lkguard:policy@0.1.0",
        hostile("wrong-wit").display()
    );
    let corrupt = format!(
        "could not evaluate policy {}: it could not be loaded: not a policy component",
        corrupt.display()
    );
    let mut args = vec!["--deadline-ms", "200", "--memory-mib", "32"];
    for p in &components {
        args.extend(["--policy", p.to_str().unwrap()]);
    }
    let s = start(&args);
    let c = client(&s.ca.pem);
    let bad = find(
        "fixtures/rendered/bad/image-digest-tag-only.yaml",
        "Deployment",
        "livekit",
    );
    for round in 0..2 {
        let started = std::time::Instant::now();
        let r = post(&c, &s, &review("CREATE", Some(&bad), false)).await;
        assert_eq!(r["response"]["allowed"], false, "{r:#}");
        assert_eq!(r["response"]["uid"], "uid-CREATE-livekit", "{r:#}");
        let m = r["response"]["status"]["message"].as_str().unwrap();
        for expected in [
            "could not evaluate policy hostile-loop: it exceeded its deadline of 200 ms",
            "could not evaluate policy hostile-trap: it trapped: wasm `unreachable` instruction executed",
            "could not evaluate policy hostile-memory-bomb: it exceeded its memory cap of 32 MiB",
            "could not evaluate policy hostile-sleep: it exceeded its deadline of 200 ms",
            "could not evaluate policy hostile-big-message: it returned a finding message of 10485760 bytes, over the 64 KiB limit for one text",
            "could not evaluate policy hostile-escape: it returned an error: reading /etc/passwd failed: ",
            "env PATH failed: environment variable not found (all: [])",
            "connecting to 127.0.0.1:22 failed: ",
            &wrong_wit,
            &corrupt,
        ] {
            assert!(m.contains(expected), "round {round}: no {expected:?} in {m}");
        }
        assert!(m.len() < 64 << 10, "{} bytes", m.len());
        assert!(!m.contains("root:"), "{m}");
        // The other policies' verdicts are still given.
        assert!(m.contains("livekit/image-digest"), "{m}");
        // Stopped at the deadline, not at the 8 s request deadline.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // The next request, of an object the hostile policies still fail on, is
    // answered the same; a GET is served as ever.
    let ok = find(GOOD, "Service", "livekit");
    let r = post(&c, &s, &review("CREATE", Some(&ok), false)).await;
    assert_eq!(r["response"]["uid"], "uid-CREATE-livekit", "{r:#}");
    assert_eq!(r["response"]["allowed"], false, "{r:#}");
    let r = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = metrics(&c, &s).await;
    assert!(
        metrics.contains("lkguard_admission_requests_total{verdict=\"denied\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_findings_is_refused_at_the_output_limit_and_the_server_goes_on() {
    // 100 MB of findings needs room to be built: a memory cap of 512 MiB.
    let flood = hostile("flood");
    let s = start(&[
        "--memory-mib",
        "512",
        "--deadline-ms",
        "7000",
        "--policy",
        flood.to_str().unwrap(),
    ]);
    let c = client(&s.ca.pem);
    let object = find(GOOD, "Deployment", "livekit");
    for _ in 0..2 {
        let r = post(&c, &s, &review("CREATE", Some(&object), false)).await;
        assert_eq!(r["response"]["allowed"], false, "{r:#}");
        let m = r["response"]["status"]["message"].as_str().unwrap();
        assert_eq!(
            m,
            "lkguard could not evaluate policy hostile-flood: it returned more than 64 MiB of findings, lkguard's limit on what one evaluation may return"
        );
    }
    let r = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_by_its_request_deadline_whatever_the_policies_do() {
    // A policy deadline of 60 s is longer than the request's 1 s: the server
    // answers (denying) by the request deadline, stops the evaluation there
    // too rather than let it burn a core for a minute, and goes on.
    let looping = hostile("loop");
    let s = start(&[
        "--deadline-ms",
        "60000",
        "--request-deadline-ms",
        "1000",
        "--policy",
        looping.to_str().unwrap(),
    ]);
    let c = client(&s.ca.pem);
    let obj = find(GOOD, "Service", "livekit");
    let started = std::time::Instant::now();
    let r = post(&c, &s, &review("CREATE", Some(&obj), false)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r["response"]["allowed"], false, "{r:#}");
    let m = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        m.contains("within the request deadline of 1000 ms")
            || m.contains("hostile-loop: it exceeded its deadline of 1000 ms"),
        "{m}"
    );
    let r = c.get(format!("{}/readyz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_is_reloaded_when_its_files_change() {
    let s = start(&[]);
    let other = ca("rotated CA");
    let old_client = client(&s.ca.pem);
    let new_client = client(&other.pem);
    let health = format!("{}/healthz", s.url);
    assert!(old_client.get(&health).send().await.is_ok());
    assert!(new_client.get(&health).send().await.is_err());
    serving_cert(&other, &s.dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A fresh client: no pooled connection from before the rotation.
        if client(&other.pem).get(&health).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotated certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_exits_cleanly() {
    let mut s = start(&[]);
    let c = client(&s.ca.pem);
    assert!(c.get(format!("{}/healthz", s.url)).send().await.is_ok());
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_object_gets_the_same_verdict_from_the_cli_and_the_webhook() {
    let s = start(&[]);
    let c = client(&s.ca.pem);
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        GOOD.to_string(),
        "fixtures/rendered/production.yaml".to_string(),
    ];
    files.extend(bad_fixtures().iter().map(|p| relative(p)));
    let mut compared = 0;
    for file in files {
        for (i, obj) in objects_of(&file).iter().enumerate() {
            let body = review("CREATE", Some(obj), false);
            let path = dir.path().join(format!("review-{i}.json"));
            std::fs::write(&path, body.to_string()).unwrap();
            let cli = lkguard(&["review", path.to_str().unwrap()]);
            let cli_response: Value = serde_json::from_slice(&cli.stdout).unwrap();
            let served = post(&c, &s, &body).await;
            assert_eq!(
                rule_ids(&cli_response),
                rule_ids(&served),
                "{file} object {i}"
            );
            assert_eq!(
                cli_response["response"]["allowed"],
                served["response"]["allowed"]
            );
            assert_eq!(
                cli.status.code(),
                Some(if served["response"]["allowed"] == true {
                    0
                } else {
                    1
                })
            );
            compared += 1;
        }
    }
    assert!(compared > 200, "{compared}");
}

#[test]
fn the_deployment_manifests_render_and_hold_what_a_webhook_needs() {
    let out = Command::new("kubectl")
        .args(["kustomize", "deploy/webhook"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(&String::from_utf8_lossy(&out.stdout))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
    let get = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let d = get("Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(get("Service")["spec"]["ports"][0]["port"], 443);
    assert_eq!(get("PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let w = get("ValidatingWebhookConfiguration");
    assert_eq!(
        w["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "lkguard-system/lkguard-webhook"
    );
    let hook = &w["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
    let timeout = hook["timeoutSeconds"].as_u64().unwrap();
    let deadline_ms: u64 = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| {
            a.as_str()?
                .strip_prefix("--request-deadline-ms=")?
                .parse()
                .ok()
        })
        .unwrap();
    assert!(
        deadline_ms < timeout * 1000,
        "the server answers before the API server gives up"
    );
    assert_eq!(
        hook["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "memql"
    );
    assert_eq!(hook["clientConfig"]["service"]["path"], "/validate");
    let resources: Vec<&str> = hook["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    for r in [
        "deployments",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
        "pods",
        "configmaps",
        "services",
        "externalsecrets",
        "rollouts",
    ] {
        assert!(resources.contains(&r), "{r} not watched");
    }
    assert!(docs.iter().any(|d| d["kind"] == "Issuer"));
    assert_eq!(
        get("Certificate")["spec"]["secretName"],
        "lkguard-webhook-tls"
    );
}

/// `lkguard review` holds what it reads to the server's 3 MiB body cap: a
/// review the server would answer 413 is refused, without reading it whole.
#[test]
fn review_refuses_a_body_over_the_api_servers_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge-review.json");
    let mut body = serde_json::to_vec(&review("CREATE", None, false)).unwrap();
    body.resize((3 << 20) + 1, b' ');
    std::fs::write(&path, body).unwrap();
    let out = lkguard(&["review", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("huge-review.json"), "{err}");
    assert!(err.contains("over 3145728 bytes"), "{err}");
}

/// A literal secret planted in every place a manifest can carry one
/// (fixtures/secrets/planted.yaml) never comes out: not in any report
/// format of `lkguard check`, not from `lkguard review`, not in a webhook
/// answer, the metrics, or the server's log.
#[tokio::test(flavor = "multi_thread")]
async fn a_planted_secret_never_appears_in_any_output() {
    const PLANTED: &str = "PLANTED-s3cr3t-9f2c4e";
    const FILE: &str = "fixtures/secrets/planted.yaml";
    let fixture = std::fs::read_to_string(root().join(FILE)).unwrap();
    assert!(
        fixture.matches(PLANTED).count() >= 6,
        "the fixture plants it"
    );
    let clean = |what: &str, text: &str| {
        assert!(!text.contains(PLANTED), "{what} shows the secret:\n{text}");
        assert!(
            !text.contains("s3cr3t"),
            "{what} shows part of the secret:\n{text}"
        );
    };

    let dir = tempfile::tempdir().unwrap();
    for format in ["human", "json", "sarif", "junit", "github"] {
        let out = lkguard(&["check", "--format", format, FILE]);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        clean(format, &format!("{}{}", stdout(&out), stderr(&out)));
        let report = dir.path().join(format!("report.{format}"));
        let out = lkguard(&[
            "check",
            "--format",
            format,
            "--output",
            report.to_str().unwrap(),
            FILE,
        ]);
        assert_eq!(out.status.code(), Some(1), "{format} --output");
        clean(&format!("{format} --output (terminal)"), &stdout(&out));
        clean(
            &format!("{format} --output (file)"),
            &std::fs::read_to_string(&report).unwrap(),
        );
    }

    let log = tempfile::NamedTempFile::new().unwrap();
    let s = start_with(&[], &cache_dir(), Stdio::from(log.reopen().unwrap()));
    let c = client(&s.ca.pem);
    let objects = objects_of(FILE);
    assert_eq!(objects.len(), 3);
    let mut denied = 0;
    for object in &objects {
        for operation in ["CREATE", "UPDATE"] {
            let body = review(operation, Some(object), false);
            let answer = post(&c, &s, &body).await;
            denied += usize::from(answer["response"]["allowed"] == false);
            clean(&format!("{operation} answer"), &answer.to_string());

            let file = dir.path().join("review.json");
            std::fs::write(&file, body.to_string()).unwrap();
            let out = lkguard(&["review", file.to_str().unwrap()]);
            clean(
                &format!("lkguard review {operation}"),
                &format!("{}{}", stdout(&out), stderr(&out)),
            );
        }
    }
    assert_eq!(
        denied, 6,
        "every object is denied: the outputs talk about them"
    );
    clean("metrics", &metrics(&c, &s).await);
    drop(s);
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        log.contains("uid-CREATE-livekit"),
        "the log has the requests: {log}"
    );
    clean("server log", &log);
}

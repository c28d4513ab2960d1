//! A fake Kubernetes API server for integration tests: plain HTTP/1.1 on 127.0.0.1, written
//! with `std::net` and threads only (no extra dependencies beyond `serde_json`).
//!
//! * Serves ConfigMaps and Secrets (`/api/v1/namespaces/{ns}/{configmaps,secrets}[/{name}]`)
//!   and StatefulSets (`/apis/apps/v1/namespaces/{ns}/statefulsets[/{name}]`): list (with
//!   equality-based `labelSelector`: `k=v`, `k==v`, `k!=v`, `k`, `!k`), get, and JSON merge
//!   patch (`application/merge-patch+json`) with the `metadata.resourceVersion` precondition
//!   (409 on mismatch) and `dryRun=All`.
//! * Objects live in an in-memory store that the test fills (`put_configmap`, `put_secret`,
//!   `put_statefulset`) in wire format (Secret `data` values base64-encoded, as the API
//!   returns them).
//! * Every request is recorded (`requests()`), including those answered by a fault.
//! * Faults, per path prefix or global (`Behaviour` at start, or `set_fault` /
//!   `set_path_fault` later): see [`Fault`]. Faults act before authentication, as a broken
//!   network or proxy would.
//! * `kubeconfig_path()` is a kubeconfig for the server with a bearer token ([`TOKEN`]); with
//!   `Behaviour::require_token` a missing or wrong token gets a real-shaped 401.
//! * A concurrent writer can be played with `change_after`: right after the server has
//!   computed the answer to a matching request (and before sending it), an object is changed
//!   and its `resourceVersion` bumped, e.g. between a client's list and its patch.
//! * Every response carries `Connection: close`. The server stops on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// The bearer token in the generated kubeconfig.
pub const TOKEN: &str = "fake-token";
/// The user that [`TOKEN`] authenticates as (appears in 403 messages).
pub const USER: &str = "system:serviceaccount:ess:ess-guard";

/// A misbehaviour injected instead of the normal answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status code and body (`Content-Type: application/json`).
    Status(u16, String),
    /// 429 with `Retry-After: secs` and a Status body.
    RetryAfter(u64),
    /// Read the request, then never answer (the connection stays open until the server stops).
    Hang,
    /// Send the normal status and headers (with the full `Content-Length`) but only half of
    /// the body, then close.
    TruncatedBody,
    /// Answer with bytes that are not HTTP, then close.
    Garbage,
    /// Read the request, then close the connection without answering.
    Close,
    /// A 403 exactly as RBAC on kube-apiserver gives it, for the request's verb and resource.
    Forbidden,
}

/// How the server starts.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Reject requests without `Authorization: Bearer TOKEN` with 401.
    pub require_token: bool,
    /// The namespace of the kubeconfig's context (none: no namespace in the context).
    pub context_namespace: Option<String>,
    /// A fault for every request (path faults win).
    pub fault: Option<Fault>,
    /// Faults for requests whose path starts with the given prefix (first match wins).
    pub path_faults: Vec<(String, Fault)>,
}

impl Behaviour {
    pub fn normal() -> Self {
        Behaviour::default()
    }
    pub fn require_token(mut self) -> Self {
        self.require_token = true;
        self
    }
    pub fn context_namespace(mut self, ns: &str) -> Self {
        self.context_namespace = Some(ns.to_string());
        self
    }
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }
    pub fn path_fault(mut self, path_prefix: &str, fault: Fault) -> Self {
        self.path_faults.push((path_prefix.to_string(), fault));
        self
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (still percent-encoded), if any.
    pub query: Option<String>,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// A decoded query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        parse_query(self.query.as_deref().unwrap_or("")).remove(key)
    }
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ConfigMap,
    Secret,
    StatefulSet,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
            Kind::StatefulSet => "statefulsets",
        }
    }
    fn group(self) -> &'static str {
        match self {
            Kind::StatefulSet => "apps",
            _ => "",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Kind::StatefulSet => "apps/v1",
            _ => "v1",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::StatefulSet => "StatefulSet",
        }
    }
    /// `configmaps` or `statefulsets.apps`, as in API server messages.
    fn qualified(self) -> String {
        match self.group() {
            "" => self.resource().to_string(),
            g => format!("{}.{g}", self.resource()),
        }
    }
}

struct State {
    objects: BTreeMap<(Kind, String, String), Value>,
    requests: Vec<RecordedRequest>,
    require_token: bool,
    fault: Option<Fault>,
    path_faults: Vec<(String, Fault)>,
    next_rv: u64,
    after_hooks: Vec<AfterHook>,
}

/// A one-shot change made by "someone else" once a matching request has been answered.
struct AfterHook {
    method: String,
    path: String,
    object_path: String,
    merge_patch: Value,
}

impl State {
    fn bump_rv(&mut self) -> String {
        self.next_rv += 1;
        self.next_rv.to_string()
    }
}

/// The running fake server. Stops (and removes its kubeconfig directory) on drop.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

static INSTANCE: AtomicU64 = AtomicU64::new(0);

impl FakeApiServer {
    /// Binds 127.0.0.1:0 and serves in a background thread.
    pub fn start(behaviour: Behaviour) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            objects: BTreeMap::new(),
            requests: Vec::new(),
            require_token: behaviour.require_token,
            fault: behaviour.fault.clone(),
            path_faults: behaviour.path_faults.clone(),
            next_rv: 1000,
            after_hooks: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));

        let dir = std::env::temp_dir().join(format!(
            "fake-apiserver-{}-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::SeqCst),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).expect("create kubeconfig dir");
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(
            &kubeconfig,
            &format!("http://{addr}"),
            Some(TOKEN),
            behaviour.context_namespace.as_deref(),
        );

        let thread_state = Arc::clone(&state);
        let thread_stop = Arc::clone(&stop);
        let accept_thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || accept_loop(listener, thread_state, thread_stop))
            .expect("spawn accept thread");

        FakeApiServer {
            addr,
            state,
            stop,
            accept_thread: Some(accept_thread),
            dir,
            kubeconfig,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (context `fake`, user token [`TOKEN`]) for this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Writes another kubeconfig next to the default one, e.g. with another server URL
    /// (`https://…`) or token (`None`: no user credentials). Returns its path.
    pub fn write_kubeconfig_variant(
        &self,
        file_name: &str,
        server: &str,
        token: Option<&str>,
        namespace: Option<&str>,
    ) -> PathBuf {
        let path = self.dir.join(file_name);
        write_kubeconfig(&path, server, token, namespace);
        path
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Stores a ConfigMap (wire JSON); `metadata.namespace` is set to `ns`, and a
    /// `resourceVersion` is assigned unless the JSON has one. Returns the stored object.
    pub fn put_configmap(&self, ns: &str, object: Value) -> Value {
        self.put(Kind::ConfigMap, ns, object)
    }
    /// Stores a Secret (wire JSON: `data` values base64-encoded).
    pub fn put_secret(&self, ns: &str, object: Value) -> Value {
        self.put(Kind::Secret, ns, object)
    }
    /// Stores a StatefulSet (wire JSON).
    pub fn put_statefulset(&self, ns: &str, object: Value) -> Value {
        self.put(Kind::StatefulSet, ns, object)
    }

    pub fn get_configmap(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(Kind::ConfigMap, ns, name)
    }
    pub fn get_secret(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(Kind::Secret, ns, name)
    }
    pub fn get_statefulset(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(Kind::StatefulSet, ns, name)
    }

    fn put(&self, kind: Kind, ns: &str, mut object: Value) -> Value {
        let mut st = self.state();
        if !object.is_object() {
            panic!("put_{}: the object must be a JSON object", kind.resource());
        }
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind());
        if !object.get("metadata").is_some_and(Value::is_object) {
            object["metadata"] = json!({});
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("put_{}: metadata.name is required", kind.resource()))
            .to_string();
        object["metadata"]["namespace"] = json!(ns);
        if object["metadata"].get("resourceVersion").is_none() {
            let rv = st.bump_rv();
            object["metadata"]["resourceVersion"] = json!(rv);
        }
        if object["metadata"].get("uid").is_none() {
            object["metadata"]["uid"] = json!(format!("fake-uid-{name}"));
        }
        st.objects
            .insert((kind, ns.to_string(), name), object.clone());
        object
    }

    fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        self.state()
            .objects
            .get(&(kind, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// All requests so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Sets (or with `None` clears) the global fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state().fault = fault;
    }

    /// Adds a fault for requests whose path starts with `path_prefix`.
    pub fn set_path_fault(&self, path_prefix: &str, fault: Fault) {
        self.state()
            .path_faults
            .push((path_prefix.to_string(), fault));
    }

    /// Removes the global and all path faults.
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.fault = None;
        st.path_faults.clear();
    }

    /// Plays a concurrent writer: once, right after the server has computed its answer to the
    /// next `method` request on exactly `path` (the answer still carries the old state), the
    /// object at `object_path` (e.g. `/apis/apps/v1/namespaces/ess/statefulsets/x`) gets the
    /// JSON merge patch `merge_patch` and a new `resourceVersion`.
    pub fn change_after(&self, method: &str, path: &str, object_path: &str, merge_patch: Value) {
        assert!(
            route(object_path).is_some_and(|r| r.name.is_some()),
            "change_after: {object_path} is not an object path"
        );
        self.state().after_hooks.push(AfterHook {
            method: method.to_string(),
            path: path.to_string(),
            object_path: object_path.to_string(),
            merge_patch,
        });
    }

    pub fn set_require_token(&self, require: bool) {
        self.state().require_token = require;
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not wedge the server.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_kubeconfig(path: &Path, server: &str, token: Option<&str>, namespace: Option<&str>) {
    let user = match token {
        Some(t) => format!("    token: {t}\n"),
        None => "    {}\n".to_string(),
    };
    let ns = match namespace {
        Some(n) => format!("    namespace: {n}\n"),
        None => String::new(),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n{ns}\
         current-context: fake\nusers:\n- name: fake\n  user:\n{user}"
    );
    std::fs::write(path, text).expect("write kubeconfig");
}

fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = Arc::clone(&state);
                let stop = Arc::clone(&stop);
                let _ = std::thread::Builder::new()
                    .name("fake-apiserver-conn".into())
                    .spawn(move || handle_connection(stream, &state, &stop));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

struct HttpRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct HttpResponse {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn json(code: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            code,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn head(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.code,
            reason_phrase(self.code),
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

fn handle_connection(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let req = match read_request(&mut stream) {
        Ok(req) => req,
        Err(NotHttp) => {
            // What an HTTP server answers to, e.g., a TLS ClientHello.
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    };
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (req.target.clone(), None),
    };
    let recorded = RecordedRequest {
        method: req.method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
    };
    let fault = {
        let mut st = lock(state);
        st.requests.push(recorded.clone());
        st.path_faults
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, f)| f.clone())
            .or_else(|| st.fault.clone())
    };

    match fault {
        Some(Fault::Hang) => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(Fault::Close) => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Some(Fault::Garbage) => {
            let _ = stream.write_all(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n");
            let _ = stream.flush();
        }
        Some(Fault::Status(code, body)) => {
            let resp = HttpResponse {
                code,
                headers: Vec::new(),
                body: body.into_bytes(),
            };
            write_response(&mut stream, &resp);
        }
        Some(Fault::RetryAfter(secs)) => {
            let mut resp = HttpResponse::json(
                429,
                &status_body(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                    json!({ "retryAfterSeconds": secs }),
                ),
            );
            resp.headers.push(("Retry-After".into(), secs.to_string()));
            write_response(&mut stream, &resp);
        }
        Some(Fault::Forbidden) => {
            let resp = forbidden_response(&recorded);
            write_response(&mut stream, &resp);
        }
        Some(Fault::TruncatedBody) => {
            let resp = serve(state, &recorded);
            let _ = stream.write_all(&resp.head());
            let _ = stream.write_all(&resp.body[..resp.body.len() / 2]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        None => {
            let resp = serve(state, &recorded);
            run_after_hooks(state, &recorded);
            write_response(&mut stream, &resp);
        }
    }
}

/// Applies (and removes) the first `change_after` hook matching the request.
fn run_after_hooks(state: &Mutex<State>, req: &RecordedRequest) {
    let mut st = lock(state);
    let Some(i) = st
        .after_hooks
        .iter()
        .position(|h| h.method == req.method && h.path == req.path)
    else {
        return;
    };
    let hook = st.after_hooks.remove(i);
    let Some(r) = route(&hook.object_path) else {
        return;
    };
    let key = (r.kind, r.namespace, r.name.unwrap_or_default());
    let Some(mut object) = st.objects.get(&key).cloned() else {
        return;
    };
    merge_patch(&mut object, &hook.merge_patch);
    let rv = st.bump_rv();
    object["metadata"]["resourceVersion"] = json!(rv);
    st.objects.insert(key, object);
}

fn write_response(stream: &mut TcpStream, resp: &HttpResponse) {
    let mut bytes = resp.head();
    bytes.extend_from_slice(&resp.body);
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// The bytes received are not an HTTP request (or the connection failed first).
struct NotHttp;

/// Reads one HTTP/1.1 request (Content-Length or chunked body).
fn read_request(stream: &mut TcpStream) -> Result<HttpRequest, NotHttp> {
    read_request_inner(stream).ok_or(NotHttp)
}

fn read_request_inner(stream: &mut TcpStream) -> Option<HttpRequest> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        // A request line starts with an upper-case method; anything else (e.g. a TLS
        // handshake, first byte 0x16) is not HTTP.
        if buf.len() > 1 << 20 || buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(stream, rest)?
    } else {
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    Some(HttpRequest {
        method,
        target,
        headers,
        body,
    })
}

fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>| -> Option<()> {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        Some(())
    };
    loop {
        let line_end = loop {
            if let Some(p) = find(&buf, b"\r\n") {
                break p;
            }
            fill(&mut buf)?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Some(body);
        }
        while buf.len() < size + 2 {
            fill(&mut buf)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn status_body(code: u16, reason: &str, message: &str, details: Value) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if !details.is_null() {
        v["details"] = details;
    }
    v
}

/// The parsed route of a request path.
struct Route {
    kind: Kind,
    namespace: String,
    name: Option<String>,
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (kind, rest) = match segs.as_slice() {
        ["api", "v1", "namespaces", ns, res, rest @ ..] => {
            let kind = match *res {
                "configmaps" => Kind::ConfigMap,
                "secrets" => Kind::Secret,
                _ => return None,
            };
            (kind, (ns.to_string(), rest))
        }
        ["apis", "apps", "v1", "namespaces", ns, "statefulsets", rest @ ..] => {
            (Kind::StatefulSet, (ns.to_string(), rest))
        }
        _ => return None,
    };
    let (namespace, rest) = rest;
    let name = match rest {
        [] => None,
        [name] => Some(percent_decode(name)),
        _ => return None,
    };
    Some(Route {
        kind,
        namespace,
        name,
    })
}

fn verb_of(method: &str, has_name: bool) -> &'static str {
    match (method, has_name) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("POST", _) => "create",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn user_of(req: &RecordedRequest) -> &'static str {
    match req.header("authorization") {
        Some(v) if v == format!("Bearer {TOKEN}") => USER,
        _ => "system:anonymous",
    }
}

fn forbidden_response(req: &RecordedRequest) -> HttpResponse {
    let Some(r) = route(&req.path) else {
        return HttpResponse::json(
            403,
            &status_body(
                403,
                "Forbidden",
                &format!(
                    "forbidden: User \"{}\" cannot {} path \"{}\"",
                    user_of(req),
                    req.method.to_ascii_lowercase(),
                    req.path
                ),
                json!({}),
            ),
        );
    };
    let verb = verb_of(&req.method, r.name.is_some());
    let subject = match &r.name {
        Some(n) => format!("{} \"{n}\"", r.kind.qualified()),
        None => r.kind.qualified(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
        user_of(req),
        r.kind.resource(),
        r.kind.group(),
        r.namespace
    );
    let mut details = serde_json::Map::new();
    if let Some(n) = &r.name {
        details.insert("name".into(), json!(n));
    }
    if !r.kind.group().is_empty() {
        details.insert("group".into(), json!(r.kind.group()));
    }
    details.insert("kind".into(), json!(r.kind.resource()));
    HttpResponse::json(
        403,
        &status_body(403, "Forbidden", &message, Value::Object(details)),
    )
}

/// The normal (fault-free) answer.
fn serve(state: &Mutex<State>, req: &RecordedRequest) -> HttpResponse {
    let mut st = lock(state);
    if st.require_token && user_of(req) != USER {
        return HttpResponse::json(
            401,
            &status_body(401, "Unauthorized", "Unauthorized", Value::Null),
        );
    }
    let Some(r) = route(&req.path) else {
        return HttpResponse::json(
            404,
            &status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
                json!({}),
            ),
        );
    };
    let query = parse_query(req.query.as_deref().unwrap_or(""));
    match (req.method.as_str(), &r.name) {
        ("GET", None) => list(&st, &r, &query),
        ("GET", Some(name)) => match st.objects.get(&(r.kind, r.namespace.clone(), name.clone())) {
            Some(obj) => HttpResponse::json(200, obj),
            None => not_found(&r, name),
        },
        ("PATCH", Some(name)) => patch(&mut st, &r, name, req, &query),
        _ => HttpResponse::json(
            405,
            &status_body(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                json!({}),
            ),
        ),
    }
}

fn not_found(r: &Route, name: &str) -> HttpResponse {
    let mut details = json!({ "name": name, "kind": r.kind.resource() });
    if !r.kind.group().is_empty() {
        details["group"] = json!(r.kind.group());
    }
    HttpResponse::json(
        404,
        &status_body(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", r.kind.qualified()),
            details,
        ),
    )
}

fn list(st: &State, r: &Route, query: &BTreeMap<String, String>) -> HttpResponse {
    let selector = match query.get("labelSelector") {
        Some(s) => match parse_selector(s) {
            Some(sel) => sel,
            None => {
                return HttpResponse::json(
                    400,
                    &status_body(
                        400,
                        "BadRequest",
                        &format!("unable to parse requirement: {s:?}"),
                        Value::Null,
                    ),
                );
            }
        },
        None => Vec::new(),
    };
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((kind, ns, _), _)| *kind == r.kind && *ns == r.namespace)
        .map(|(_, obj)| obj)
        .filter(|obj| {
            let labels = obj["metadata"]["labels"].as_object();
            selector.iter().all(|req| req.matches(labels))
        })
        .cloned()
        .collect();
    HttpResponse::json(
        200,
        &json!({
            "kind": format!("{}List", r.kind.kind()),
            "apiVersion": r.kind.api_version(),
            "metadata": { "resourceVersion": st.next_rv.to_string() },
            "items": items,
        }),
    )
}

fn patch(
    st: &mut State,
    r: &Route,
    name: &str,
    req: &RecordedRequest,
    query: &BTreeMap<String, String>,
) -> HttpResponse {
    let content_type = req.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/merge-patch+json") {
        return HttpResponse::json(
            415,
            &status_body(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got {content_type:?})"
                ),
                Value::Null,
            ),
        );
    }
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None => false,
        Some("All") => true,
        Some(other) => {
            return HttpResponse::json(
                400,
                &status_body(
                    400,
                    "BadRequest",
                    &format!("Invalid dryRun value {other:?}"),
                    Value::Null,
                ),
            );
        }
    };
    let Ok(patch_doc) = serde_json::from_slice::<Value>(&req.body) else {
        return HttpResponse::json(
            400,
            &status_body(400, "BadRequest", "invalid JSON patch body", Value::Null),
        );
    };
    let key = (r.kind, r.namespace.clone(), name.to_string());
    let Some(current) = st.objects.get(&key).cloned() else {
        return not_found(r, name);
    };
    let current_rv = current["metadata"]["resourceVersion"].clone();
    if patch_doc
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .is_some_and(|wanted| !wanted.is_null() && *wanted != current_rv)
    {
        let mut details = json!({ "name": name, "kind": r.kind.resource() });
        if !r.kind.group().is_empty() {
            details["group"] = json!(r.kind.group());
        }
        return HttpResponse::json(
            409,
            &status_body(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    r.kind.qualified()
                ),
                details,
            ),
        );
    }
    let mut updated = current.clone();
    merge_patch(&mut updated, &patch_doc);
    // Identity fields cannot be changed by a patch.
    updated["apiVersion"] = current["apiVersion"].clone();
    updated["kind"] = current["kind"].clone();
    updated["metadata"]["name"] = json!(name);
    updated["metadata"]["namespace"] = json!(r.namespace);
    updated["metadata"]["resourceVersion"] = current_rv;
    if updated == current || dry_run {
        return HttpResponse::json(200, &updated);
    }
    if updated.get("spec") != current.get("spec") {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        updated["metadata"]["generation"] = json!(generation + 1);
    }
    let rv = st.bump_rv();
    updated["metadata"]["resourceVersion"] = json!(rv);
    st.objects.insert(key, updated.clone());
    HttpResponse::json(200, &updated)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target_map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                target_map.remove(k);
            } else {
                merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Equality-based selectors only (no `in (...)`).
fn parse_selector(s: &str) -> Option<Vec<Requirement>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let req = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if part.contains(' ') || part.contains('(') {
            return None;
        } else {
            Requirement::Exists(part.into())
        };
        out.push(req);
    }
    Some(out)
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

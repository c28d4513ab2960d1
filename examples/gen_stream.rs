//! Generates a realistic, large Helm render of the `matrix-stack` chart for benchmarks.
//!
//! ```text
//! cargo run --release --example gen_stream -- --size 10M [--shape helm4|template] [--release ess] [-o FILE]
//! ```
//!
//! The documents are modelled on the real step-2 render with Synapse workers
//! (`shared/ess-renders/postrender-input/helm4/step2-workers.yaml`, chart 26.8.2-dev): the same
//! labels, hook annotations, container layout and config blocks. The stream is an allowed step 2
//! for a stored marker `legacy_auth`:
//! - the pre-upgrade markers Job asks for `<rel>-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth`;
//! - MAS is deployed, its config Secret carries `user-password-scheme.yml` with a bcrypt v1 scheme;
//! - the syn2mas Job is a `pre-install,pre-upgrade` hook, next to Synapse's check-config hook Job.
//!
//! The size is reached by repeating the per-worker unit of the chart: a Synapse worker
//! StatefulSet (`app.kubernetes.io/component: matrix-server`, `app.kubernetes.io/name:
//! synapse-<type>`, `k8s.element.io/synapse-instance: <rel>-synapse`), its Service and a ConfigMap
//! holding that worker's config and log config. (The chart itself keeps all worker configs in the
//! one `<rel>-synapse` ConfigMap; that is impossible at these sizes, Kubernetes caps an object at
//! 1 MiB, so the generator keeps `<rel>-synapse` at its real size and gives each repeated worker its
//! own ConfigMap.) Every Synapse StatefulSet is one that a step-2 post-render annotates.
//!
//! Shapes:
//! - `helm4` (default): Helm 4 post-renderer input — every document, hooks included, in template
//!   file order, no `# Source:` comments, each with the `postrenderer.helm.sh/postrender-filename`
//!   annotation, separated by `---` lines (none before the first document).
//! - `template`: `helm template` / Helm 3 output — `---` + `# Source: <file>` before each document,
//!   non-hook documents first in Helm's kind install order, then the hooks.

use std::io::Write;

const WORKERS: &[(&str, &str)] = &[
    ("main", "main"),
    ("account-data", "account-data"),
    ("appservice", "appservice"),
    ("background", "background"),
    ("client-reader", "client-reader"),
    ("device-lists", "device-lists"),
    ("encryption", "encryption"),
    ("event-creator", "event-creator"),
    ("event-persister", "event-persist"),
    ("federation-inbound", "fed-inbound"),
    ("federation-reader", "fed-reader"),
    ("federation-sender", "fed-sender"),
    ("initial-synchrotron", "initial-sync"),
    ("mas-helper", "mas-helper"),
    ("media-repository", "media-repo"),
    ("presence-writer", "presence-write"),
    ("push-rules", "push-rules"),
    ("pusher", "pusher"),
    ("receipts", "receipts"),
    ("sliding-sync", "sliding-sync"),
    ("synchrotron", "synchrotron"),
    ("typing-persister", "typing"),
    ("user-dir", "user-dir"),
];

/// Helm's install order for non-hook documents (`releaseutil.InstallOrder`, abridged).
const INSTALL_ORDER: &[&str] = &[
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "StatefulSet",
    "Job",
    "Ingress",
];

struct Doc {
    file: String,
    kind: &'static str,
    hook: bool,
    text: String,
}

struct Gen {
    rel: String,
    ns: String,
    helm4: bool,
}

const CHART_LABELS: &str = "    helm.sh/chart: \"matrix-stack-26.8.2-dev\"\n    app.kubernetes.io/managed-by: Helm\n    app.kubernetes.io/part-of: matrix-stack\n";

impl Gen {
    /// `metadata.annotations` for a document: its hook annotations and, for Helm 4, the filename.
    fn annotations(&self, file: &str, hook: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (k, v) in hook {
            out.push_str(&format!("    \"helm.sh/{k}\": {v}\n"));
        }
        if self.helm4 {
            out.push_str(&format!(
                "    postrenderer.helm.sh/postrender-filename: 'matrix-stack/templates/{file}'\n"
            ));
        }
        if out.is_empty() {
            out
        } else {
            format!("  annotations:\n{out}")
        }
    }

    fn labels(
        &self,
        component: &str,
        name: &str,
        instance: &str,
        version: &str,
        extra: &str,
    ) -> String {
        format!(
            "  labels:\n{CHART_LABELS}    app.kubernetes.io/component: {component}\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/instance: {instance}\n    app.kubernetes.io/version: \"{version}\"\n{extra}"
        )
    }

    fn sub(&self, text: &str) -> String {
        text.replace("{rel}", &self.rel).replace("{ns}", &self.ns)
    }

    #[allow(clippy::too_many_arguments)]
    fn doc(
        &self,
        file: &str,
        api: &str,
        kind: &'static str,
        name: &str,
        labels: String,
        hook: &[(&str, &str)],
        body: &str,
    ) -> Doc {
        let text = format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n{labels}{ann}{body}",
            ns = self.ns,
            ann = self.annotations(file, hook),
            body = self.sub(body),
        );
        Doc {
            file: format!("matrix-stack/templates/{file}"),
            kind,
            hook: !hook.is_empty(),
            text,
        }
    }

    fn tools_labels(&self, name: &str) -> String {
        self.labels(
            "matrix-tools",
            name,
            &format!("{}-{name}", self.rel),
            "0.8.1",
            "",
        )
    }

    /// ServiceAccount, Role and RoleBinding of a hook or component.
    fn rbac(
        &self,
        file_dir: &str,
        name: &str,
        labels: &str,
        hook: &[(&str, &str)],
        rules: &str,
    ) -> Vec<Doc> {
        let full = format!("{}-{name}", self.rel);
        vec![
            self.doc(&format!("{file_dir}/serviceaccount.yaml"), "v1", "ServiceAccount", &full, labels.to_string(), hook, "automountServiceAccountToken: false\n"),
            self.doc(&format!("{file_dir}/role.yaml"), "rbac.authorization.k8s.io/v1", "Role", &full, labels.to_string(), hook, rules),
            self.doc(
                &format!("{file_dir}/rolebinding.yaml"),
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                &full,
                labels.to_string(),
                hook,
                &format!("roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {full}\nsubjects:\n- kind: ServiceAccount\n  name: {full}\n  namespace: {{ns}}\n"),
            ),
        ]
    }

    fn singletons(&self) -> Vec<Doc> {
        let rel = &self.rel;
        let mut docs = Vec::new();
        let pre_hook: &[(&str, &str)] = &[
            ("hook", "pre-install,pre-upgrade"),
            ("hook-weight", "\"-10\""),
        ];
        let pre_rbac_hook: &[(&str, &str)] = &[
            ("hook", "pre-install,pre-upgrade"),
            ("hook-weight", "\"-11\""),
        ];
        let post_hook: &[(&str, &str)] = &[
            ("hook", "post-install,post-upgrade"),
            ("hook-weight", "\"10\""),
        ];
        let post_rbac_hook: &[(&str, &str)] = &[
            ("hook", "post-install,post-upgrade"),
            ("hook-weight", "\"9\""),
        ];
        let markers_rules = "rules:\n- apiGroups:\n  - \"\"\n  resources:\n  - configmaps\n  verbs:\n  - create\n  - get\n  - patch\n  - update\n";

        // deployment markers: pre (the witness of the requested transition) and post.
        for (step, hook, rbac_hook) in [
            ("pre", pre_hook, pre_rbac_hook),
            ("post", post_hook, post_rbac_hook),
        ] {
            let name = format!("deployment-markers-{step}");
            let labels = self.tools_labels(&name);
            docs.extend(self.rbac(
                "deployment-markers",
                &name,
                &labels,
                rbac_hook,
                markers_rules,
            ));
            let body = JOB_MARKERS.replace("{step}", step).replace("{name}", &name);
            docs.push(self.doc(
                "deployment-markers/job.yaml",
                "batch/v1",
                "Job",
                &format!("{rel}-{name}"),
                labels,
                hook,
                &body,
            ));
        }

        // haproxy in front of Synapse and MAS.
        let labels = self.labels(
            "matrix-stack-ingress",
            "haproxy",
            &format!("{rel}-haproxy"),
            "3.2",
            "",
        );
        docs.push(self.doc(
            "haproxy/configmap.yaml",
            "v1",
            "ConfigMap",
            &format!("{rel}-haproxy"),
            labels.clone(),
            &[],
            &haproxy_config(),
        ));
        docs.push(self.doc(
            "haproxy/deployment.yaml",
            "apps/v1",
            "Deployment",
            &format!("{rel}-haproxy"),
            labels.clone(),
            &[],
            DEPLOYMENT_HAPROXY,
        ));
        docs.push(self.doc(
            "haproxy/service.yaml",
            "v1",
            "Service",
            &format!("{rel}-haproxy"),
            labels.clone(),
            &[],
            &service_body(
                &format!("{rel}-haproxy"),
                &[("haproxy-metrics", 8405), ("synapse", 8008)],
            ),
        ));
        docs.push(self.doc(
            "haproxy/serviceaccount.yaml",
            "v1",
            "ServiceAccount",
            &format!("{rel}-haproxy"),
            labels,
            &[],
            "automountServiceAccountToken: false\n",
        ));

        // init-secrets.
        let labels = self.tools_labels("init-secrets");
        docs.extend(self.rbac("init-secrets", "init-secrets", &labels, pre_rbac_hook, "rules:\n- apiGroups:\n  - \"\"\n  resources:\n  - secrets\n  verbs:\n  - create\n  - get\n  - update\n"));
        docs.push(self.doc(
            "init-secrets/job.yaml",
            "batch/v1",
            "Job",
            &format!("{rel}-init-secrets"),
            labels,
            pre_hook,
            JOB_INIT_SECRETS,
        ));

        // MAS.
        let mas = format!("{rel}-matrix-authentication-service");
        let labels = self.labels(
            "matrix-authentication",
            "matrix-authentication-service",
            &mas,
            "1.23.0",
            "",
        );
        let hook_m1: &[(&str, &str)] = &[
            ("hook", "pre-install,pre-upgrade"),
            ("hook-weight", "\"-1\""),
        ];
        docs.push(self.doc(
            "matrix-authentication-service/configmap.yaml",
            "v1",
            "ConfigMap",
            &mas,
            labels.clone(),
            &[],
            MAS_CONFIG,
        ));
        docs.push(self.doc(
            "matrix-authentication-service/configmap_hook.yaml",
            "v1",
            "ConfigMap",
            &format!("{mas}-pre"),
            labels.clone(),
            hook_m1,
            MAS_CONFIG,
        ));
        docs.push(self.doc(
            "matrix-authentication-service/deployment.yaml",
            "apps/v1",
            "Deployment",
            &mas,
            labels.clone(),
            &[],
            DEPLOYMENT_MAS,
        ));
        docs.push(self.doc(
            "matrix-authentication-service/ingress.yaml",
            "networking.k8s.io/v1",
            "Ingress",
            &mas,
            labels.clone(),
            &[],
            &ingress_body("mas.ess.localhost", &mas),
        ));
        docs.push(self.doc(
            "matrix-authentication-service/secret.yaml",
            "v1",
            "Secret",
            &mas,
            labels.clone(),
            &[],
            MAS_SECRET,
        ));
        docs.push(self.doc(
            "matrix-authentication-service/secret_hook.yaml",
            "v1",
            "Secret",
            &format!("{mas}-pre"),
            labels.clone(),
            hook_m1,
            MAS_SECRET,
        ));
        docs.push(self.doc(
            "matrix-authentication-service/service.yaml",
            "v1",
            "Service",
            &mas,
            labels.clone(),
            &[],
            &service_body(&mas, &[("http", 8080), ("internal", 8081)]),
        ));
        docs.push(self.doc(
            "matrix-authentication-service/serviceaccount.yaml",
            "v1",
            "ServiceAccount",
            &mas,
            labels,
            &[],
            "automountServiceAccountToken: false\n",
        ));

        // syn2mas: a pre-install,pre-upgrade hook in step 2.
        let labels = self.labels(
            "matrix-authentication",
            "syn2mas",
            &format!("{rel}-syn2mas"),
            "1.23.0-debug",
            "",
        );
        docs.extend(self.rbac("matrix-authentication-service/syn2mas", "syn2mas", &labels, hook_m1, "rules:\n- apiGroups:\n  - apps\n  resources:\n  - statefulsets\n  - statefulsets/scale\n  verbs:\n  - get\n  - list\n  - patch\n  - update\n"));
        docs.push(self.doc(
            "matrix-authentication-service/syn2mas_job.yaml",
            "batch/v1",
            "Job",
            &format!("{rel}-syn2mas"),
            labels,
            &[
                ("hook", "pre-install,pre-upgrade"),
                ("hook-weight", "\"0\""),
            ],
            JOB_SYN2MAS,
        ));

        // postgres: a StatefulSet that is not Synapse's.
        let labels = self.labels(
            "matrix-stack-db",
            "postgres",
            &format!("{rel}-postgres"),
            "17.6",
            "",
        );
        docs.push(self.doc("postgres/configmap.yaml", "v1", "ConfigMap", &format!("{rel}-postgres"), labels.clone(), &[], "data:\n  configure-dbs.sh: |\n    #!/bin/sh\n    set -e\n    psql -v ON_ERROR_STOP=1 --username \"$POSTGRES_USER\" <<-EOSQL\n      CREATE ROLE synapse_user LOGIN;\n      CREATE DATABASE synapse OWNER synapse_user ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0;\n    EOSQL\n"));
        docs.push(self.doc("postgres/pvc.yaml", "v1", "PersistentVolumeClaim", &format!("{rel}-postgres-data"), labels.clone(), &[], "spec:\n  accessModes:\n  - ReadWriteOnce\n  resources:\n    requests:\n      storage: 10Gi\n"));
        docs.push(self.doc(
            "postgres/service.yaml",
            "v1",
            "Service",
            &format!("{rel}-postgres"),
            labels.clone(),
            &[],
            &service_body(&format!("{rel}-postgres"), &[("postgres", 5432)]),
        ));
        docs.push(self.doc(
            "postgres/serviceaccount.yaml",
            "v1",
            "ServiceAccount",
            &format!("{rel}-postgres"),
            labels.clone(),
            &[],
            "automountServiceAccountToken: false\n",
        ));
        docs.push(self.doc(
            "postgres/statefulset.yaml",
            "apps/v1",
            "StatefulSet",
            &format!("{rel}-postgres"),
            labels,
            &[],
            STATEFULSET_POSTGRES,
        ));

        // Synapse: check-config hook, config, secrets, ingress.
        let syn = format!("{rel}-synapse");
        let syn_extra = format!("    k8s.element.io/synapse-instance: {syn}\n");
        let labels = self.labels("matrix-server", "synapse", &syn, "v1.159.0", &syn_extra);
        let cc_labels = self.labels(
            "matrix-server",
            "synapse-check-config",
            &format!("{syn}-check-config"),
            "v1.159.0",
            &format!("    k8s.element.io/synapse-instance: {syn}-check-config\n"),
        );
        docs.push(self.doc(
            "synapse/synapse_check_config_job_hook.yaml",
            "batch/v1",
            "Job",
            &format!("{syn}-check-config"),
            cc_labels.clone(),
            &[
                ("hook", "pre-install,pre-upgrade"),
                ("hook-weight", "\"0\""),
            ],
            JOB_CHECK_CONFIG,
        ));
        docs.push(self.doc(
            "synapse/synapse_check_config_serviceaccount.yaml",
            "v1",
            "ServiceAccount",
            &format!("{syn}-check-config"),
            cc_labels.clone(),
            hook_m1,
            "automountServiceAccountToken: false\n",
        ));
        docs.push(self.doc(
            "synapse/synapse_configmap.yaml",
            "v1",
            "ConfigMap",
            &syn,
            labels.clone(),
            &[],
            &synapse_config(true),
        ));
        docs.push(self.doc(
            "synapse/synapse_configmap_hook.yaml",
            "v1",
            "ConfigMap",
            &format!("{syn}-hook"),
            cc_labels.clone(),
            hook_m1,
            &synapse_config(false),
        ));
        docs.push(self.doc(
            "synapse/synapse_ingress.yaml",
            "networking.k8s.io/v1",
            "Ingress",
            &syn,
            labels.clone(),
            &[],
            &ingress_body("synapse.ess.localhost", &format!("{rel}-haproxy")),
        ));
        docs.push(self.doc("synapse/synapse_pvc.yaml", "v1", "PersistentVolumeClaim", &format!("{syn}-media"), labels.clone(), &[], "spec:\n  accessModes:\n  - ReadWriteOnce\n  resources:\n    requests:\n      storage: 10Gi\n"));
        docs.push(self.doc(
            "synapse/synapse_secret.yaml",
            "v1",
            "Secret",
            &syn,
            labels.clone(),
            &[],
            "type: Opaque\ndata:\n  01-other-user-config.yaml: cmVwb3J0X3N0YXRzOiBmYWxzZQo=\n",
        ));
        docs.push(self.doc(
            "synapse/synapse_secret_hook.yaml",
            "v1",
            "Secret",
            &format!("{syn}-hook"),
            cc_labels.clone(),
            hook_m1,
            "type: Opaque\ndata:\n  01-other-user-config.yaml: cmVwb3J0X3N0YXRzOiBmYWxzZQo=\n",
        ));
        docs.push(self.doc(
            "synapse/synapse_service.yaml",
            "v1",
            "Service",
            &syn,
            labels.clone(),
            &[],
            &service_body(&format!("{rel}-haproxy"), &[("haproxy-synapse", 8008)]),
        ));
        docs.push(self.doc(
            "synapse/synapse_serviceaccount.yaml",
            "v1",
            "ServiceAccount",
            &syn,
            labels,
            &[],
            "automountServiceAccountToken: false\n",
        ));
        docs
    }

    /// The repeated unit: worker `i`'s Service, ConfigMap and StatefulSet.
    fn worker(&self, i: usize) -> [Doc; 3] {
        // One main process; every further round repeats the 22 worker types.
        let (ty, short, round) = if i < WORKERS.len() {
            (WORKERS[i].0, WORKERS[i].1, 0)
        } else {
            let j = i - WORKERS.len();
            let (ty, short) = WORKERS[1 + j % (WORKERS.len() - 1)];
            (ty, short, 1 + j / (WORKERS.len() - 1))
        };
        let name = if round == 0 {
            format!("{}-synapse-{short}", self.rel)
        } else {
            format!("{}-synapse-{short}-{round}", self.rel)
        };
        let syn = format!("{}-synapse", self.rel);
        let extra = format!(
            "    k8s.element.io/synapse-instance: {syn}\n    k8s.element.io/synapse-config-hash: \"4b5363bd58a4117b81b6933135765d29aedbed{:02x}\"\n    k8s.element.io/synapse-secret-hash: \"0f710c6d017350fb3da93e921a169898a26fbf08\"\n    k8s.element.io/postgres-password-synapse-hash: dbd8665cfb39383754f02ce18502f9979ad8a74d\n",
            i % 256
        );
        let labels = self.labels(
            "matrix-server",
            &format!("synapse-{ty}"),
            &name,
            "v1.159.0",
            &extra,
        );
        let replicas = if ty == "main" { 1 } else { 1 + i % 3 };
        let module = if ty == "main" {
            "synapse.app.homeserver"
        } else {
            "synapse.app.generic_worker"
        };
        let sts = STATEFULSET_SYNAPSE
            .replace("{name}", &name)
            .replace("{type}", ty)
            .replace("{replicas}", &replicas.to_string())
            .replace("{module}", module)
            .replace("{extra}", &extra.replace("    ", "        "));
        [
            self.doc(
                "synapse/synapse_service.yaml",
                "v1",
                "Service",
                &name,
                labels.clone(),
                &[],
                &service_body(
                    &name,
                    &[
                        ("synapse-http", 8008),
                        ("synapse-health", 8080),
                        ("synapse-metrics", 9001),
                    ],
                ),
            ),
            self.doc(
                "synapse/synapse_worker_configmap.yaml",
                "v1",
                "ConfigMap",
                &name,
                labels.clone(),
                &[],
                &worker_config(ty, &name),
            ),
            self.doc(
                "synapse/synapse_statefulset.yaml",
                "apps/v1",
                "StatefulSet",
                &name,
                labels,
                &[],
                &sts,
            ),
        ]
    }
}

fn service_body(selector: &str, ports: &[(&str, u16)]) -> String {
    let mut s = format!("spec:\n  type: ClusterIP\n  ipFamilyPolicy: PreferDualStack\n  selector:\n    app.kubernetes.io/instance: {selector}\n  ports:\n");
    for (name, port) in ports {
        s.push_str(&format!(
            "  - name: {name}\n    port: {port}\n    targetPort: {name}\n    protocol: TCP\n"
        ));
    }
    s
}

fn ingress_body(host: &str, service: &str) -> String {
    format!(
        "spec:\n  rules:\n  - host: \"{host}\"\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: \"{service}\"\n            port:\n              name: http\n  tls:\n  - hosts:\n    - \"{host}\"\n    secretName: ess-certificate\n"
    )
}

fn worker_config(ty: &str, name: &str) -> String {
    let mut s = format!(
        "data:\n  05-{ty}.yaml: |2\n\n    worker_app: synapse.app.generic_worker\n    worker_name: ${{APPLICATION_NAME}}\n\n    worker_listeners:\n"
    );
    for (port, res, fwd) in [
        (
            8008,
            "- names:\n        - client\n        - federation",
            true,
        ),
        (9093, "- names: [replication]", false),
        (8080, "- names: [health]", false),
    ] {
        s.push_str(&format!(
            "    - port: {port}\n      tls: false\n      bind_addresses:\n      - \"::\"\n      - \"0.0.0.0\"\n      type: http\n      x_forwarded: {fwd}\n      resources:\n      {res}\n        compress: false\n"
        ));
    }
    s.push_str("    - type: metrics\n      port: 9001\n      bind_addresses:\n      - \"::\"\n    enable_local_media_storage: false\n");
    s.push_str(&format!("    instance_map:\n      {name}-0:\n        host: {name}-0.{name}.ess.svc.cluster.local.\n        port: 9093\n"));
    s.push_str(LOG_CONFIG);
    s
}

const LOG_CONFIG: &str = "  log_config.yaml: |\n    version: 1\n\n    formatters:\n      precise:\n        format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'\n\n    handlers:\n      console:\n        class: logging.StreamHandler\n        formatter: precise\n\n    loggers:\n      synapse.storage.SQL:\n        level: \"INFO\"\n\n    root:\n      level: \"INFO\"\n      handlers:\n      - console\n\n    disable_existing_loggers: false\n";

fn synapse_config(main: bool) -> String {
    let mut s = String::from(SYNAPSE_CONFIG);
    if main {
        for (ty, _) in WORKERS.iter().skip(1) {
            s.push_str(&format!("  05-{ty}.yaml: |2\n\n    worker_app: synapse.app.generic_worker\n    worker_name: ${{APPLICATION_NAME}}\n\n    worker_listeners:\n    - type: metrics\n      port: 9001\n      bind_addresses:\n      - \"::\"\n    - port: 8080\n      tls: false\n      bind_addresses:\n      - \"::\"\n      - \"0.0.0.0\"\n      type: http\n      x_forwarded: false\n      resources:\n      - names: [health]\n        compress: false\n    enable_local_media_storage: false\n"));
        }
    }
    s.push_str(LOG_CONFIG);
    s
}

fn haproxy_config() -> String {
    let mut s = String::from("data:\n  haproxy.cfg: |\n    global\n      maxconn 40000\n      log stdout format raw local0 info\n      stats socket /tmp/haproxy.sock mode 600 expose-fd listeners level user\n\n    defaults\n      mode http\n      timeout connect 5s\n      timeout client 30s\n      timeout server 30s\n\n    frontend synapse-http-in\n      bind *:8008\n      http-request set-var(req.backend) path,map_reg(/synapse/path_map_file,main)\n      use_backend %[var(req.backend)]\n\n");
    for (ty, short) in WORKERS {
        s.push_str(&format!(
            "    backend {ty}\n      option httpchk\n      http-check connect port 8080\n      http-check send meth GET uri /health\n      balance roundrobin\n      server-template {ty} 1-10 _synapse-http._tcp.{{rel}}-synapse-{short}.{{ns}}.svc.cluster.local. resolvers kubedns init-addr none check\n\n"
        ));
    }
    s.push_str("  path_map_file: |\n    # A map file that is used in haproxy config to map from matrix paths to the\n    # named backend. The format is: path_regexp backend_name\n    ^/_matrix/client/(r0|v3|unstable)/.*/tags account-data\n    ^/_matrix/client/(r0|v3|unstable)/.*/account_data account-data\n    ^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$ client-reader\n    ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$ client-reader\n    ^/_matrix/federation/v1/send/ federation-inbound\n    ^/_matrix/media/ media-repository\n    ^/_matrix/client/(r0|v3)/sync$ synchrotron\n");
    s
}

const JOB_MARKERS: &str = r#"spec:
  backoffLimit: 6
  completionMode: NonIndexed
  completions: 1
  manualSelector: false
  parallelism: 1
  podReplacementPolicy: TerminatingOrFailed
  template:
    metadata:
      annotations:
      labels:
        app.kubernetes.io/managed-by: Helm
        app.kubernetes.io/part-of: matrix-stack
        app.kubernetes.io/component: matrix-tools
        app.kubernetes.io/name: {name}
        app.kubernetes.io/instance: {rel}-{name}
        app.kubernetes.io/version: "0.8.1"
    spec:
      automountServiceAccountToken: true
      serviceAccountName: {rel}-{name}
      securityContext:
        fsGroup: 10010
        runAsGroup: 10010
        runAsNonRoot: true
        runAsUser: 10010
        seccompProfile:
          type: RuntimeDefault
        supplementalGroups: []
      restartPolicy: Never
      containers:
      - name: deployment-markers
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop:
            - ALL
          privileged: false
          readOnlyRootFilesystem: true
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 50m
            memory: 50Mi
        env:
        - name: NAMESPACE
          value: {ns}
        args:
        - "deployment-markers"
        - "-step"
        - "{step}"
        - "-markers"
        - "{rel}-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth"
        - "-labels"
        - "app.kubernetes.io/managed-by=Helm,app.kubernetes.io/part-of=matrix-stack,app.kubernetes.io/component=matrix-tools,app.kubernetes.io/name=deployment-markers,app.kubernetes.io/instance={rel}-deployment-markers,app.kubernetes.io/version=0.8.1"
"#;

const JOB_INIT_SECRETS: &str = r#"spec:
  backoffLimit: 6
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-tools
        app.kubernetes.io/name: init-secrets
        app.kubernetes.io/instance: {rel}-init-secrets
    spec:
      automountServiceAccountToken: true
      serviceAccountName: {rel}-init-secrets
      restartPolicy: Never
      containers:
      - name: init-secrets
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        env:
        - name: NAMESPACE
          value: {ns}
        args:
        - generate-secrets
        - -secrets
        - "{rel}-generated:SYNAPSE_REGISTRATION_SHARED_SECRET:rand32,{rel}-generated:SYNAPSE_MACAROON:rand32,{rel}-generated:SYNAPSE_SIGNING_KEY:signingkey,{rel}-generated:MAS_SYNAPSE_SHARED_SECRET:rand32,{rel}-generated:MAS_ENCRYPTION_SECRET:hex32,{rel}-generated:MAS_RSA_PRIVATE_KEY:rsa4096,{rel}-generated:MAS_ECDSA_PRIME256V1_PRIVATE_KEY:ecdsaprime256v1,{rel}-generated:POSTGRES_ADMIN_PASSWORD:rand32"
        - -labels
        - "app.kubernetes.io/managed-by=Helm,app.kubernetes.io/part-of=matrix-stack,app.kubernetes.io/component=matrix-tools,app.kubernetes.io/name=generated-secrets,app.kubernetes.io/instance={rel}-generated"
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 50m
            memory: 50Mi
"#;

const MAS_CONFIG: &str = r#"data:
  mas-config-underrides.yaml: |2

    policy:
      data:
        admin_clients: []
        admin_users: []
        client_registration:
          allow_host_mismatch: false
          allow_insecure_uris: false

    experimental:
      session_limit:
        soft_limit: 50
        hard_limit: 50
  mas-config-overrides.yaml: |
    http:
      public_base: "https://mas.ess.localhost"
      listeners:
      - name: web
        binds:
        - port: 8080
        resources:
        - name: human
        - name: discovery
        - name: oauth
        - name: compat
        - name: assets
        - name: graphql
          undocumented_oauth2_access: true
        - name: adminapi
      - name: internal
        binds:
        - port: 8081
        resources:
        - name: health
        - name: prometheus
        - name: connection-info

    database:
      host: {rel}-postgres.{ns}.svc.cluster.local.
      port: 5432
      username: matrixauthenticationservice_user
      password_file: /secrets/{rel}-generated/POSTGRES_MATRIX_AUTHENTICATION_SERVICE_PASSWORD
      database: matrixauthenticationservice
      ssl_mode: prefer

    telemetry:
      metrics:
        exporter: prometheus
    matrix:
      homeserver: "ess.localhost"
      secret_file: /secrets/{rel}-generated/MAS_SYNAPSE_SHARED_SECRET
      endpoint: "http://{rel}-synapse.{ns}.svc.cluster.local.:8008"
      kind: synapse_modern

    secrets:
      encryption_file: /secrets/{rel}-generated/MAS_ENCRYPTION_SECRET
      keys:
      - key_file: /secrets/{rel}-generated/MAS_RSA_PRIVATE_KEY
      - key_file: /secrets/{rel}-generated/MAS_ECDSA_PRIME256V1_PRIVATE_KEY
"#;

/// `passwords: {schemes: [{version: 1, algorithm: bcrypt}, {version: 2, algorithm: argon2id}]}`,
/// base64, as the chart renders it from `matrixAuthenticationService.syn2mas`.
const MAS_SECRET: &str = "type: Opaque\ndata:\n  user-password-scheme.yml: cGFzc3dvcmRzOgogIHNjaGVtZXM6CiAgICAtIHZlcnNpb246IDEKICAgICAgYWxnb3JpdGhtOiBiY3J5cHQKICAgIC0gdmVyc2lvbjogMgogICAgICBhbGdvcml0aG06IGFyZ29uMmlkCg==\n";

const SYNAPSE_CONFIG: &str = r#"data:
  01-homeserver-underrides.yaml: |2

    report_stats: false

    mau_stats_only: true

    require_auth_for_profile_requests: true

    federation_client_minimum_tls_version: '1.2'

    experimental_features:
      msc4028_push_encrypted_events: true
      # QR Code Login. Requires MAS
      msc4108_enabled: true

    url_preview_enabled: true
    url_preview_ip_range_whitelist: []
    url_preview_ip_range_blacklist:
    - '192.168.0.0/16'
    - '100.64.0.0/10'
    - '169.254.0.0/16'
    - '::1/128'
    - 'fe80::/10'
    - 'fc00::/7'

    database:
      args:
        keepalives: 1
        keepalives_idle: 10
        cp_min: 5
        cp_max: 10
  04-homeserver-overrides.yaml: |
    public_baseurl: https://synapse.ess.localhost/
    server_name: ess.localhost
    signing_key_path: /secrets/{rel}-generated/SYNAPSE_SIGNING_KEY
    enable_metrics: true
    log_config: "/conf/log_config.yaml"
    macaroon_secret_key_path:  /secrets/{rel}-generated/SYNAPSE_MACAROON
    registration_shared_secret_path: /secrets/{rel}-generated/SYNAPSE_REGISTRATION_SHARED_SECRET

    database:
      name: psycopg2
      args:
        user: "synapse_user"
        password: ${SYNAPSE_POSTGRES_PASSWORD}
        dbname: "synapse"
        host: "{rel}-postgres.{ns}.svc.cluster.local."
        port: 5432
        sslmode: prefer
        application_name: ${APPLICATION_NAME}

    ip_range_blacklist:
    - '127.0.0.0/8'
    - '10.0.0.0/8'
    - '172.16.0.0/12'
    - '192.168.0.0/16'
    matrix_authentication_service:
      enabled: true
      secret_path: /secrets/{rel}-generated/MAS_SYNAPSE_SHARED_SECRET
      endpoint: http://{rel}-matrix-authentication-service.{ns}.svc.cluster.local.:8080/
      force_http2: true

    password_config:
      localdb_enabled: false
      enabled: false

    notify_appservices_from_worker: {rel}-synapse-appservice-0
    run_background_tasks_on: {rel}-synapse-background-0
    start_pushers: false
    send_federation: false
    stream_writers:
      events:
      - {rel}-synapse-event-persist-0
      typing:
      - {rel}-synapse-typing-0
  05-main.yaml: |2

    worker_app: synapse.app.homeserver
    listeners:
    - port: 8008
      tls: false
      bind_addresses:
      - "::"
      - "0.0.0.0"
      type: http
      x_forwarded: true
      resources:
      - names:
        - client
        - federation
        compress: false
    - port: 9093
      tls: false
      bind_addresses:
      - "::"
      type: http
      x_forwarded: false
      resources:
      - names: [replication]
        compress: false
    - type: metrics
      port: 9001
      bind_addresses:
      - "::"
    enable_local_media_storage: false
"#;

const DEPLOYMENT_HAPROXY: &str = r#"spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {rel}-haproxy
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-stack-ingress
        app.kubernetes.io/name: haproxy
        app.kubernetes.io/instance: {rel}-haproxy
    spec:
      serviceAccountName: {rel}-haproxy
      containers:
      - name: haproxy
        image: "docker.io/library/haproxy:3.2-alpine"
        imagePullPolicy: Always
        args:
        - "-f"
        - "/usr/local/etc/haproxy/haproxy.cfg"
        ports:
        - containerPort: 8008
          name: haproxy-synapse
          protocol: TCP
        - containerPort: 8405
          name: haproxy-metrics
          protocol: TCP
        volumeMounts:
        - name: haproxy-config
          mountPath: "/usr/local/etc/haproxy"
          readOnly: true
      volumes:
      - configMap:
          name: "{rel}-haproxy"
          defaultMode: 0440
        name: haproxy-config
"#;

const DEPLOYMENT_MAS: &str = r#"spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {rel}-matrix-authentication-service
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 2
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-authentication
        app.kubernetes.io/name: matrix-authentication-service
        app.kubernetes.io/instance: {rel}-matrix-authentication-service
    spec:
      automountServiceAccountToken: false
      serviceAccountName: {rel}-matrix-authentication-service
      initContainers:
      - name: render-config
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        args:
        - render-config
        - -output
        - /conf/mas-config.yaml
        - /config-templates/mas-config-underrides.yaml
        - /secrets/{rel}-matrix-authentication-service/user-password-scheme.yml
        - /config-templates/mas-config-overrides.yaml
        volumeMounts:
        - mountPath: /config-templates
          name: plain-config
          readOnly: true
        - mountPath: /conf
          name: rendered-config
          readOnly: false
      containers:
      - name: matrix-authentication-service
        args:
        - server
        - --no-migrate
        image: "ghcr.io/element-hq/matrix-authentication-service:1.23.0"
        imagePullPolicy: Always
        env:
        - name: MAS_CONFIG
          value: /conf/mas-config.yaml
        ports:
        - containerPort: 8080
          protocol: TCP
          name: http
        - containerPort: 8081
          protocol: TCP
          name: internal
        volumeMounts:
        - mountPath: "/conf/mas-config.yaml"
          name: rendered-config
          subPath: mas-config.yaml
          readOnly: true
      volumes:
      - configMap:
          defaultMode: 420
          name: {rel}-matrix-authentication-service
        name: plain-config
      - emptyDir:
          medium: Memory
        name: "rendered-config"
"#;

const JOB_SYN2MAS: &str = r#"spec:
  backoffLimit: 0
  completionMode: NonIndexed
  completions: 1
  manualSelector: false
  parallelism: 1
  podReplacementPolicy: TerminatingOrFailed
  template:
    metadata:
      annotations:
      labels:
        app.kubernetes.io/component: matrix-authentication
        app.kubernetes.io/name: syn2mas
        app.kubernetes.io/instance: {rel}-syn2mas
        app.kubernetes.io/version: "1.23.0-debug"
    spec:
      automountServiceAccountToken: true
      serviceAccountName: {rel}-syn2mas
      restartPolicy: Never
      initContainers:
      - name: copy-mas-cli
        image: "ghcr.io/element-hq/matrix-authentication-service:1.23.0-debug"
        imagePullPolicy: Always
        command:
        - sh
        - -c
        - cp -v /usr/local/bin/mas-cli /tmp-mas-cli/mas-cli
        volumeMounts:
        - mountPath: /tmp-mas-cli
          name: tmp-mas-cli
      - name: render-config-mas
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        args:
        - render-config
        - -output
        - /conf/mas-config.yaml
        - /config-templates/mas-config-underrides.yaml
        - /secrets/{rel}-matrix-authentication-service-pre/user-password-scheme.yml
        - /config-templates/mas-config-overrides.yaml
        volumeMounts:
        - mountPath: /config-templates
          name: plain-mas-config
          readOnly: true
        - mountPath: /conf
          name: rendered-config
          readOnly: false
      - name: syn2mas-check
        args: ["syn2mas", "check", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"]
        image: "ghcr.io/element-hq/matrix-authentication-service:1.23.0-debug"
        imagePullPolicy: Always
        volumeMounts:
        - mountPath: "/conf"
          name: rendered-config
          readOnly: true
      containers:
      - name: syn2mas-migrate
        args: ["syn2mas", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"]
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        env:
        - name: NAMESPACE
          value: {ns}
        resources:
          limits:
            memory: 350Mi
          requests:
            cpu: 50m
            memory: 50Mi
        volumeMounts:
        - mountPath: "/conf"
          name: rendered-config
          readOnly: true
        - mountPath: "/tmp-mas-cli"
          name: tmp-mas-cli
          readOnly: true
      volumes:
      - name: plain-syn-config
        configMap:
          defaultMode: 420
          name: {rel}-synapse-hook
      - name: plain-mas-config
        configMap:
          name: {rel}-matrix-authentication-service-pre
      - emptyDir:
          medium: Memory
        name: "rendered-config"
      - emptyDir:
          medium: Memory
        name: "tmp-mas-cli"
"#;

const JOB_CHECK_CONFIG: &str = r#"spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-server
        app.kubernetes.io/name: synapse-check-config
        app.kubernetes.io/instance: {rel}-synapse-check-config
    spec:
      automountServiceAccountToken: false
      serviceAccountName: {rel}-synapse-check-config
      restartPolicy: Never
      initContainers:
      - name: render-config
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        args:
        - render-config
        - -output
        - /conf/homeserver.yaml
        - /config-templates/01-homeserver-underrides.yaml
        - /config-templates/04-homeserver-overrides.yaml
        - /config-templates/05-main.yaml
        volumeMounts:
        - mountPath: /config-templates
          name: plain-config
          readOnly: true
        - mountPath: /conf
          name: rendered-config
          readOnly: false
      containers:
      - name: synapse
        image: "oci.element.io/synapse:v1.159.0"
        imagePullPolicy: Always
        command:
        - "python3"
        - "-m"
        - synapse.config
        - "-c"
        - /conf/homeserver.yaml
        volumeMounts:
        - mountPath: "/conf/homeserver.yaml"
          name: rendered-config
          subPath: homeserver.yaml
          readOnly: true
      volumes:
      - configMap:
          defaultMode: 420
          name: {rel}-synapse-hook
        name: plain-config
      - emptyDir:
          medium: Memory
        name: "rendered-config"
"#;

const STATEFULSET_POSTGRES: &str = r#"spec:
  replicas: 1
  serviceName: {rel}-postgres
  selector:
    matchLabels:
      app.kubernetes.io/instance: {rel}-postgres
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-stack-db
        app.kubernetes.io/name: postgres
        app.kubernetes.io/instance: {rel}-postgres
    spec:
      serviceAccountName: {rel}-postgres
      initContainers:
      - name: db-init
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        args:
        - tcpwait
        - -address
        - "127.0.0.1:5432"
      containers:
      - name: postgres
        image: "docker.io/library/postgres:17-alpine"
        imagePullPolicy: Always
        env:
        - name: POSTGRES_INITDB_ARGS
          value: "-E UTF8"
        ports:
        - containerPort: 5432
          name: postgres
          protocol: TCP
        volumeMounts:
        - mountPath: /docker-entrypoint-initdb.d
          name: init
        - mountPath: /var/lib/postgres/data
          name: data
      volumes:
      - configMap:
          defaultMode: 0440
          name: {rel}-postgres
        name: init
      - persistentVolumeClaim:
          claimName: {rel}-postgres-data
        name: data
"#;

/// A Synapse process StatefulSet, as the chart renders `synapse/synapse_statefulset.yaml`.
const STATEFULSET_SYNAPSE: &str = r#"spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {name}
  serviceName: {name}
  updateStrategy:
    type: RollingUpdate
  # Without this CrashLoopBackoffs due to config failures block pod recreation
  podManagementPolicy: Parallel
  template:
    metadata:
      labels:
        app.kubernetes.io/managed-by: Helm
        app.kubernetes.io/part-of: matrix-stack
        app.kubernetes.io/component: matrix-server
        app.kubernetes.io/name: synapse-{type}
        app.kubernetes.io/instance: {name}
        app.kubernetes.io/version: "v1.159.0"
{extra}    spec:
      automountServiceAccountToken: false
      serviceAccountName: {rel}-synapse
      securityContext:
        fsGroup: 10091
        runAsGroup: 10091
        runAsNonRoot: true
        runAsUser: 10091
        seccompProfile:
          type: RuntimeDefault
        supplementalGroups: []
      restartPolicy: Always
      topologySpreadConstraints:
      - labelSelector:
          matchLabels:
            app.kubernetes.io/instance: {name}
        matchLabelKeys: []
        maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
      initContainers:
      - name: render-config
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop:
            - ALL
          privileged: false
          readOnlyRootFilesystem: true
        args:
        - render-config
        - -output
        - /conf/homeserver.yaml
        - /config-templates/01-homeserver-underrides.yaml
        - /secrets/{rel}-generated/SYNAPSE_EXTRA
        - /config-templates/04-homeserver-overrides.yaml
        - /config-templates/05-{type}.yaml
        env:
        - name: APPLICATION_NAME
          value: '{{ hostname }}'
        - name: SYNAPSE_POSTGRES_PASSWORD
          value: '{{ readfile "/secrets/{rel}-generated/POSTGRES_SYNAPSE_PASSWORD" | quote }}'
        resources:
          limits:
            memory: 4Gi
          requests:
            cpu: 100m
            memory: 100Mi
        volumeMounts:
        - mountPath: /config-templates
          name: plain-config
          readOnly: true
        - mountPath: /secrets/{rel}-synapse
          name: "secret-556a943937aa"
          readOnly: true
        - mountPath: /secrets/{rel}-generated
          name: "secret-eda259c754a3"
          readOnly: true
        - mountPath: /conf
          name: rendered-config
          readOnly: false
      - name: db-wait
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        imagePullPolicy: Always
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop:
            - ALL
          privileged: false
          readOnlyRootFilesystem: true
        args:
        - tcpwait
        - -address
        - "{rel}-postgres.{ns}.svc.cluster.local.:5432"
        resources:
          limits:
            memory: 4Gi
          requests:
            cpu: 100m
            memory: 100Mi
      containers:
      - name: synapse
        image: "oci.element.io/synapse:v1.159.0"
        imagePullPolicy: Always
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop:
            - ALL
          privileged: false
          readOnlyRootFilesystem: true
        command:
        - "python3"
        - "-m"
        - {module}
        - "-c"
        - /conf/homeserver.yaml
        env:
        - name: LD_PRELOAD
          value: libjemalloc.so.2
        ports:
        - containerPort: 8008
          name: synapse-http
          protocol: TCP
        - containerPort: 8080
          name: synapse-health
          protocol: TCP
        - containerPort: 9001
          name: synapse-metrics
          protocol: TCP
        startupProbe:
          failureThreshold: 21
          periodSeconds: 2
          successThreshold: 1
          timeoutSeconds: 1
          httpGet:
            path: /health
            port: synapse-health
        livenessProbe:
          failureThreshold: 3
          periodSeconds: 6
          successThreshold: 1
          timeoutSeconds: 2
          httpGet:
            path: /health
            port: synapse-health
        readinessProbe:
          failureThreshold: 3
          periodSeconds: 2
          successThreshold: 2
          timeoutSeconds: 2
          httpGet:
            path: /health
            port: synapse-health
        resources:
          limits:
            memory: 4Gi
          requests:
            cpu: 100m
            memory: 100Mi
        volumeMounts:
        - mountPath: "/conf/homeserver.yaml"
          name: rendered-config
          subPath: homeserver.yaml
          readOnly: true
        - mountPath: /secrets/{rel}-synapse
          name: "secret-556a943937aa"
          readOnly: true
        - mountPath: /secrets/{rel}-generated
          name: "secret-eda259c754a3"
          readOnly: true
        - mountPath: /conf/log_config.yaml
          name: plain-config
          subPath: log_config.yaml
          readOnly: false
        - mountPath: /media
          name: media
          readOnly: false
        - mountPath: /tmp
          name: tmp
          readOnly: false
      volumes:
      - configMap:
          defaultMode: 0440
          name: {rel}-synapse
        name: plain-config
      - secret:
          secretName: {rel}-synapse
        name: secret-556a943937aa
      - secret:
          secretName: {rel}-generated
        name: secret-eda259c754a3
      - emptyDir:
          medium: Memory
        name: "rendered-config"
      - emptyDir:
          medium: Memory
        name: "media"
      - emptyDir:
          medium: Memory
        name: "tmp"
"#;

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1usize << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad size {s:?} (e.g. 1M, 10M, 100M)"))
}

fn usage() -> ! {
    eprintln!("usage: gen_stream --size <N[K|M|G]> [--shape helm4|template] [--release NAME] [--namespace NS] [-o FILE]");
    std::process::exit(2)
}

fn main() {
    let mut size = None;
    let mut helm4 = true;
    let mut rel = "ess".to_string();
    let mut ns = "ess".to_string();
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--size" => {
                size = Some(parse_size(&value()).unwrap_or_else(|e| {
                    eprintln!("{e}");
                    usage()
                }))
            }
            "--shape" => {
                helm4 = match value().as_str() {
                    "helm4" => true,
                    "template" | "helm3" => false,
                    _ => usage(),
                }
            }
            "--release" => rel = value(),
            "--namespace" => ns = value(),
            "-o" | "--output" => out = Some(value()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let size = size.unwrap_or_else(|| usage());
    let g = Gen { rel, ns, helm4 };

    // Every document's text is at most a few KiB; the repeated units are added until the target
    // size is reached (the stream ends within one unit, ~13 KiB, of it).
    let mut docs = g.singletons();
    let sep_len = 4 + if helm4 { 0 } else { 20 };
    let mut total: usize = docs
        .iter()
        .map(|d| d.text.len() + sep_len + d.file.len())
        .sum();
    let mut i = 0;
    while total < size || i < WORKERS.len().min(size / 8192 + 1) {
        let unit = g.worker(i);
        total += unit
            .iter()
            .map(|d| d.text.len() + sep_len + d.file.len())
            .sum::<usize>();
        docs.extend(unit);
        i += 1;
    }

    // Order: Helm 4 hands over documents sorted by template file (stable within a file);
    // `helm template` prints non-hook documents in install order, then the hooks.
    if helm4 {
        docs.sort_by(|a, b| a.file.cmp(&b.file));
    } else {
        let rank = |d: &Doc| {
            (
                d.hook,
                INSTALL_ORDER
                    .iter()
                    .position(|k| *k == d.kind)
                    .unwrap_or(INSTALL_ORDER.len()),
            )
        };
        docs.sort_by_key(rank);
    }

    let sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::fs::File::create(path).unwrap_or_else(|e| {
            eprintln!("cannot create {path}: {e}");
            std::process::exit(1)
        })),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, sink);
    let result = (|| -> std::io::Result<()> {
        for (n, d) in docs.iter().enumerate() {
            if helm4 {
                if n > 0 {
                    w.write_all(b"---\n")?;
                }
            } else {
                write!(w, "---\n# Source: {}\n", d.file)?;
            }
            w.write_all(d.text.as_bytes())?;
        }
        w.flush()
    })();
    if let Err(e) = result {
        eprintln!("write failed: {e}");
        std::process::exit(1);
    }
}

//! Where the injected pieces live in the pod: volume names and mount paths, chosen so that they
//! do not collide with what an app usually mounts.

/// Every volume the webhook adds starts with this, so a second look can tell them apart.
pub const VOLUME_PREFIX: &str = "infisical-materializer-";

/// The memory-backed volume with the secret files.
pub const SECRETS_VOLUME: &str = "infisical-materializer-secrets";
/// The volume that receives the binary in `exec` mode.
pub const BIN_VOLUME: &str = "infisical-materializer-bin";
/// Where the binary is installed in `exec` mode.
pub const BIN_DIR: &str = "/infisical";
/// The installed binary.
pub const BIN_PATH: &str = "/infisical/infisical-materializer";

/// The ConfigMap with the config file.
pub const CONFIG_VOLUME: &str = "infisical-materializer-config";
/// Its mount.
pub const CONFIG_DIR: &str = "/etc/infisical-materializer/config";
/// The key the ConfigMap must hold.
pub const CONFIG_KEY: &str = "config.yaml";

/// The ConfigMap with the CA bundle.
pub const CA_VOLUME: &str = "infisical-materializer-ca";
/// Its mount.
pub const CA_DIR: &str = "/etc/infisical-materializer/ca";
/// The key the ConfigMap must hold.
pub const CA_KEY: &str = "ca.crt";

/// The credentials Secret.
pub const CREDENTIALS_VOLUME: &str = "infisical-materializer-credentials";
/// Its mount.
pub const CREDENTIALS_DIR: &str = "/var/run/secrets/infisical-materializer/credentials";

/// The projected service-account token.
pub const TOKEN_VOLUME: &str = "infisical-materializer-token";
/// Its mount.
pub const TOKEN_DIR: &str = "/var/run/secrets/infisical-materializer/token";
/// The token file in it.
pub const TOKEN_FILE: &str = "token";

/// A memory-backed volume shared with the app for its pid file (`on-change-signal`).
pub const RUN_VOLUME: &str = "infisical-materializer-run";
/// Its mount, in the app and in the sidecar.
pub const RUN_DIR: &str = "/run/infisical-materializer";
/// Where the app writes its pid.
pub const PID_FILE: &str = "/run/infisical-materializer/app.pid";

/// The tool's container names.
pub const INIT_CONTAINER: &str = "infisical-materializer-init";
/// The sidecar (native or not).
pub const SIDECAR_CONTAINER: &str = "infisical-materializer";
/// The `install` init container of `exec` mode.
pub const INSTALL_CONTAINER: &str = "infisical-materializer-install";

/// The port of `/readyz` in the sidecar modes.
pub const HEALTH_PORT: u16 = 9464;
/// The port's name in the container spec.
pub const HEALTH_PORT_NAME: &str = "infisical-health";

/// The non-root user of the image (distroless "nonroot").
pub const UID: i64 = 65532;

/// Paths `out-dir` may not overlap: the mounts above and the default service-account token.
pub const MOUNTS: &[&str] = &[
    BIN_DIR,
    CONFIG_DIR,
    CA_DIR,
    CREDENTIALS_DIR,
    TOKEN_DIR,
    RUN_DIR,
    "/var/run/secrets/kubernetes.io/serviceaccount",
];

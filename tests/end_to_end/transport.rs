//! The transport: TLS and mutual TLS with certificates made in the test, and the bound on
//! calls per token.

use std::path::PathBuf;

use kpi_proto::v1::kpi_service_client::KpiServiceClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{TestApp, kpi_request, spawn_app_with, stalled_upload, with_token};

/// A certificate authority, a server certificate for `localhost` and a client certificate,
/// all made for one test and written as PEM files.
struct TestPki {
    folder: PathBuf,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl TestPki {
    fn new(name: &str) -> TestPki {
        let folder = std::env::temp_dir().join(format!("kpi-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&server_key, &ca).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert =
            CertificateParams::new(vec!["reporting-client".to_owned()]).unwrap().signed_by(&client_key, &ca).unwrap();
        let pki = TestPki {
            folder,
            ca_pem: ca_cert.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(pki.path("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(pki.path("server.key"), server_key.serialize_pem()).unwrap();
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.folder.join(file)
    }

    /// A client that trusts the test CA, with the client certificate when `identify` is set.
    async fn client(
        &self,
        app: &TestApp,
        identify: bool,
    ) -> Result<KpiServiceClient<Channel>, tonic::transport::Error> {
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).domain_name("localhost");
        if identify {
            tls = tls.identity(Identity::from_pem(&self.client_cert_pem, &self.client_key_pem));
        }
        let endpoint = app.endpoint.replace("http://", "https://");
        let channel = Channel::from_shared(endpoint).unwrap().tls_config(tls)?.connect().await?;
        Ok(KpiServiceClient::new(channel))
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.folder).ok();
    }
}

/// With a certificate and key the server speaks TLS only: a client that trusts its CA gets
/// answers; a plain-text client gets none.
#[tokio::test]
async fn with_a_certificate_the_server_speaks_tls_only() {
    let pki = TestPki::new("server");
    let app = spawn_app_with(|config| {
        config.tls_cert = Some(pki.path("server.pem"));
        config.tls_key = Some(pki.path("server.key"));
    })
    .await;
    let mut client = pki.client(&app, false).await.unwrap();
    let kpi = client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.unwrap().into_inner();
    assert_eq!(kpi.unit_code, "PACNAM");

    let plain = match Channel::from_shared(app.endpoint.clone()).unwrap().connect().await {
        Ok(channel) => KpiServiceClient::new(channel).get_kpi(kpi_request("PACNAM", "A01", "2022")).await.err(),
        Err(_) => Some(tonic::Status::unavailable("no connection")),
    };
    assert!(plain.is_some(), "a plain-text call must fail against a TLS server");
}

/// With a client CA, only clients presenting a certificate it signed are served.
#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = TestPki::new("mutual");
    let app = spawn_app_with(|config| {
        config.tls_cert = Some(pki.path("server.pem"));
        config.tls_key = Some(pki.path("server.key"));
        config.tls_client_ca = Some(pki.path("ca.pem"));
    })
    .await;
    let anonymous = match pki.client(&app, false).await {
        Ok(mut client) => client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.err(),
        Err(_) => Some(tonic::Status::unavailable("handshake refused")),
    };
    assert!(anonymous.is_some(), "a client without a certificate must be refused");
    let mut client = pki.client(&app, true).await.unwrap();
    assert!(client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.is_ok());
}

/// A key that cannot be used stops start-up, naming the problem, instead of failing every
/// handshake later.
#[tokio::test]
async fn an_unusable_key_stops_start_up() {
    let pki = TestPki::new("broken");
    std::fs::write(pki.path("broken.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let database = kpi_store::test_support::TestDatabase::new().await;
    let mut config = crate::helpers::test_config(&database.url);
    config.tls_cert = Some(pki.path("server.pem"));
    config.tls_key = Some(pki.path("broken.key"));
    let refused = kpi_server::Application::build(config.clone()).await;
    assert!(matches!(refused, Err(kpi_server::StartupError::Tls(_))), "{refused:?}");
    config.tls_key = Some(pki.path("missing.key"));
    let missing = kpi_server::Application::build(config).await.err().map(|error| error.to_string());
    assert!(missing.as_deref().is_some_and(|message| message.contains("missing.key")), "{missing:?}");
}

/// `--max-concurrent-calls-per-token`: a token running its limit is refused at once with a
/// retry hint, while another token is still served.
#[tokio::test]
async fn one_token_cannot_take_every_place() {
    use tonic_types::StatusExt;

    let app = spawn_app_with(|config| {
        config.tokens = Some("import:busy-token,read:other-token".into());
        config.max_concurrent_calls_per_token = 1;
    })
    .await;
    let (sender, upload) = stalled_upload();
    let upload = with_token(upload, "busy-token");
    let mut importer = app.importer().await;
    let stalled = tokio::spawn(async move { importer.import_workbook(upload).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut client = app.kpi().await;
    let call = |token: &str| with_token(kpi_request("PACNAM", "B05", "2022"), token);
    let refused = client.get_kpi(call("busy-token")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("token"), "{refused:?}");
    assert!(refused.get_error_details().retry_info().is_some(), "a retry hint: {refused:?}");
    assert!(client.get_kpi(call("other-token")).await.is_ok(), "another token is served");

    drop(sender);
    let _ = stalled.await.unwrap();
    assert!(client.get_kpi(call("busy-token")).await.is_ok(), "the token's place is free again");
}

//! A simulator with one connected realm and a reqwest client, plus request helpers.

use qbo_sim::{Simulator, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const REALM: &str = "9130350000000001";

pub struct Env {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub token: String,
}

impl Env {
    pub async fn start() -> Env {
        Self::with_config(SimulatorConfig::default()).await
    }

    pub async fn with_config(config: SimulatorConfig) -> Env {
        let sim = Simulator::start(config).await.expect("simulator starts");
        let token = sim.issue_access_token(REALM);
        Env {
            sim,
            http: reqwest::Client::new(),
            token,
        }
    }

    pub fn url(&self, tail: &str) -> String {
        format!("{}/v3/company/{REALM}/{tail}", self.sim.base_url())
    }

    async fn finish(response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        assert!(
            response.headers().contains_key("intuit_tid"),
            "every answer carries intuit_tid"
        );
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, tail: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(tail))
            .query(&[("minorversion", "75")])
            .query(params)
            .bearer_auth(&self.token)
            .header("Accept", "application/json")
            .send()
            .await
            .expect("request sent");
        Self::finish(response).await
    }

    pub async fn post(
        &self,
        tail: &str,
        params: &[(&str, &str)],
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(tail))
            .query(&[("minorversion", "75")])
            .query(params)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request sent");
        Self::finish(response).await
    }

    /// Runs a query through GET and returns `QueryResponse`.
    pub async fn query(&self, statement: &str) -> Value {
        let (status, body) = self.get("query", &[("query", statement)]).await;
        assert_eq!(status, StatusCode::OK, "query {statement} failed: {body}");
        body["QueryResponse"].clone()
    }

    /// Creates a customer and returns it, asserting success.
    pub async fn create(&self, name: &str) -> Value {
        let (status, body) = self
            .post("customer", &[], &json!({"DisplayName": name}))
            .await;
        assert_eq!(status, StatusCode::OK, "create {name} failed: {body}");
        body["Customer"].clone()
    }
}

/// `Fault.Error[0]` of a standard fault body.
pub fn first_error(body: &Value) -> &Value {
    &body["Fault"]["Error"][0]
}

/// Escapes a value for a QBO query string literal.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

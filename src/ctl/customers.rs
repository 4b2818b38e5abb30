//! `connect` and `customers upsert`: what a tenant needs before its first sync.

use secrecy::ExposeSecret;

use super::{
    CtlError, Report,
    args::{ConnectArgs, CustomersCommand, Environment, UpsertArgs},
    client::Session,
    json,
    names::short,
    style::{Style, Tone},
    table::{Table, cell},
};
use crate::proto::v1 as pb;

/// `connect`: ConnectCompany.
///
/// # Errors
/// The call's refusal.
pub async fn connect(s: &Session, a: ConnectArgs, style: Style) -> Result<Report, CtlError> {
    let environment = match a.environment {
        Environment::Sandbox => pb::QboEnvironment::Sandbox,
        Environment::Production => pb::QboEnvironment::Production,
    };
    let request = pb::ConnectCompanyRequest {
        tenant_id: s.tenant.clone(),
        realm_id: a.realm,
        environment: environment.into(),
        authorization_code: a.code.unwrap_or_default(),
        redirect_uri: a.redirect_uri.unwrap_or_default(),
        refresh_token: a
            .refresh_token
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_default(),
        reset_links: a.reset_links,
        on_behalf_of: a.on_behalf_of.unwrap_or_default(),
    };
    let answer = s
        .connections
        .clone()
        .connect_company(s.request(request))
        .await?
        .into_inner();
    Ok(Report::ok(
        json::connect_response(&answer),
        connected_text(&answer, style),
    ))
}

fn connected_text(r: &pb::ConnectCompanyResponse, style: Style) -> String {
    let Some(c) = &r.connection else {
        return "connected\n".into();
    };
    let mut table = Table::bare();
    table
        .row(vec!["tenant".into(), cell(c.tenant_id.clone(), Tone::Bold)])
        .row(vec!["company (realm)".into(), c.realm_id.clone().into()])
        .row(vec![
            "environment".into(),
            short::<pb::QboEnvironment>(c.environment).into(),
        ])
        .row(vec![
            "state".into(),
            cell(short::<pb::ConnectionState>(c.state), Tone::Good),
        ]);
    if !r.previous_realm_id.is_empty() {
        table.row(vec![
            "previous company".into(),
            format!(
                "{} ({} links archived)",
                r.previous_realm_id, r.archived_links
            )
            .into(),
        ]);
    }
    table.render(style)
}

/// `customers …`.
///
/// # Errors
/// The call's refusal.
pub async fn run(s: &Session, c: CustomersCommand, style: Style) -> Result<Report, CtlError> {
    match c {
        CustomersCommand::Upsert(a) => upsert(s, a, style).await,
    }
}

async fn upsert(s: &Session, a: UpsertArgs, style: Style) -> Result<Report, CtlError> {
    let customer = pb::DigitCustomer {
        id: a.id.clone(),
        display_name: a.name,
        company_name: a.company.unwrap_or_default(),
        given_name: a.given_name.unwrap_or_default(),
        family_name: a.family_name.unwrap_or_default(),
        email: a.email.unwrap_or_default(),
        phone: a.phone.unwrap_or_default(),
        active: a.inactive.then_some(false),
    };
    let request = pb::UpsertCustomerRequest {
        tenant_id: s.tenant.clone(),
        customer: Some(customer),
        skip_push: a.skip_push,
    };
    let answer = s
        .customers
        .clone()
        .upsert_customer(s.request(request))
        .await?
        .into_inner();
    let verb = if answer.created { "created" } else { "updated" };
    let mut text = format!(
        "{} {verb}: {}",
        a.id,
        style.paint(
            super::links::state_tone(answer.state()),
            &short::<pb::LinkState>(answer.state)
        )
    );
    if answer.push_queued {
        text.push_str(" (push to QBO queued)");
    }
    if let Some(link) = &answer.link {
        text.push_str(&format!(
            " → QBO {} {:?}",
            link.qbo_customer_id, link.qbo_display_name
        ));
    }
    text.push('\n');
    Ok(Report::ok(json::upsert_response(&answer), text))
}

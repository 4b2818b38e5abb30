use super::*;

/// SHA-256 of "secret-a" and "secret-b".
fn digest_of(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file(callers: &[(&str, &str, &str, &str)]) -> String {
    callers
        .iter()
        .map(|(name, digest, scopes, tenants)| {
            format!(
                "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{digest}\"\nscopes = {scopes}\ntenants = {tenants}\n"
            )
        })
        .collect()
}

fn error_of(text: &str) -> String {
    Callers::parse(text).unwrap_err().to_string()
}

#[test]
fn a_good_file_authenticates_by_token() {
    let text = file(&[
        (
            "invoices",
            &digest_of("secret-a"),
            r#"["validate"]"#,
            r#"["t1", "t2"]"#,
        ),
        (
            "admin",
            &digest_of("secret-b").to_uppercase(),
            r#"["read", "admin"]"#,
            r#"["*"]"#,
        ),
    ]);
    let callers = Callers::parse(&text).unwrap();
    assert_eq!(callers.len(), 2);
    let a = callers.authenticate("secret-a").unwrap();
    assert_eq!(a.name.as_str(), "invoices");
    assert!(a.has_scope(Scope::Validate) && !a.has_scope(Scope::Read));
    assert!(a.may_act_for(&TenantId::parse("t2").unwrap()));
    assert!(!a.may_act_for(&TenantId::parse("t3").unwrap()));
    let b = callers.authenticate("secret-b").unwrap();
    assert_eq!(b.tenants, Tenants::All);
    assert!(callers.authenticate("secret-c").is_none());
    assert!(callers.authenticate("").is_none());
    let debug = format!("{callers:?}");
    assert!(!debug.contains(&digest_of("secret-a")), "{debug}");
}

#[test]
fn every_mistake_is_named_with_its_caller_and_field() {
    let good = digest_of("secret-a");
    let cases = [
        (
            file(&[("a", &good, r#"["raed"]"#, r#"["t1"]"#)]),
            "caller 'a': `scopes` holds an unknown scope 'raed'",
        ),
        (
            file(&[("a", &good, "[]", r#"["t1"]"#)]),
            "caller 'a': `scopes` is empty",
        ),
        (
            file(&[("a", "abc", r#"["read"]"#, r#"["t1"]"#)]),
            "caller 'a': `token_sha256` must be 64 hex digits",
        ),
        (
            file(&[("a", &"zz".repeat(32), r#"["read"]"#, r#"["t1"]"#)]),
            "caller 'a': `token_sha256` must be 64 hex digits",
        ),
        (
            file(&[("a", &good, r#"["read"]"#, "[]")]),
            "caller 'a': `tenants` is empty",
        ),
        (
            file(&[("a", &good, r#"["read"]"#, r#"["*", "t1"]"#)]),
            "caller 'a': `tenants` may hold \"*\" only alone",
        ),
        (
            file(&[("a", &good, r#"["read"]"#, r#"[""]"#)]),
            "caller 'a': `tenants` holds a tenant id that must not be empty",
        ),
        (
            file(&[
                ("a", &good, r#"["read"]"#, r#"["t1"]"#),
                ("a", &digest_of("x"), r#"["read"]"#, r#"["t1"]"#),
            ]),
            "caller 'a': `name` appears more than once",
        ),
        (
            file(&[
                ("a", &good, r#"["read"]"#, r#"["t1"]"#),
                ("b", &good.to_uppercase(), r#"["read"]"#, r#"["t1"]"#),
            ]),
            "caller 'b': `token_sha256` is the same as caller 'a''s",
        ),
        (
            format!("[[caller]]\ntoken_sha256 = \"{good}\""),
            "caller #1: `name` is missing",
        ),
        (
            format!(
                "[[caller]]\nname = \"a\"\ntoken_sha256 = \"{good}\"\nscopes = [\"read\"]\ntenants = [\"t1\"]\ntoken = \"x\""
            ),
            "caller 'a': `token` is not a known field",
        ),
        (
            "[callers]\nname = \"a\"".to_owned(),
            "the file: `callers` is not a known key",
        ),
    ];
    for (text, expected) in cases {
        let error = error_of(&text);
        assert!(error.contains(expected), "{error}\n  expected: {expected}");
    }
}

#[test]
fn errors_never_show_digests_or_other_values() {
    let good = digest_of("secret-a");
    let pasted_token = "tok_live_do_not_log_me_0123456789";
    for text in [
        file(&[("a", pasted_token, r#"["read"]"#, r#"["t1"]"#)]),
        file(&[("a", &good, &format!("[\"{pasted_token}\"]"), r#"["t1"]"#)]),
        file(&[("a", &good, r#"["read"]"#, &format!("\"{pasted_token}\""))]),
        file(&[
            ("a", &good, r#"["read"]"#, r#"["t1"]"#),
            ("b", &good, r#"["read"]"#, r#"["t1"]"#),
        ]),
        format!("[[caller]]\nname = \"a\"\ntoken_sha256 = \"{good}"),
    ] {
        let error = error_of(&text);
        assert!(!error.contains(&good), "{error}");
        assert!(!error.contains(pasted_token), "{error}");
    }
}

#[test]
fn a_syntax_error_names_its_line() {
    let error = error_of("[[caller]]\nname = \"a\"\nscopes = [\"read\"\n");
    assert!(error.contains("not valid TOML (line"), "{error}");
}

#[test]
fn an_empty_file_refuses_everyone() {
    let callers = Callers::parse("").unwrap();
    assert!(callers.is_empty());
    assert!(callers.authenticate("anything").is_none());
}

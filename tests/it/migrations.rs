use crate::helpers::fresh_database;

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = fresh_database().await.expect("fresh database");
    assert_eq!(
        qbo_sync::store::pending_migrations(&db.pool).await.unwrap(),
        0
    );
    // Running them again changes nothing and fails nothing.
    qbo_sync::store::migrate(&db.pool)
        .await
        .expect("second run");
    qbo_sync::store::migrate(&db.pool).await.expect("third run");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, qbo_sync::store::MIGRATOR.iter().count());
}

#[tokio::test]
async fn link_events_are_append_only() {
    let db = fresh_database().await.expect("fresh database");
    sqlx::query(
        "INSERT INTO link_events (tenant_id, digit_customer_id, action, actor) VALUES ('t', 'c', 'link', 'test')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let update = sqlx::query("UPDATE link_events SET actor = 'someone else'")
        .execute(&db.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM link_events")
        .execute(&db.pool)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

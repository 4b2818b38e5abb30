//! The caller load during a scenario: new Digit customers pushed one by one, spread over the
//! replicas, each retried on the other replica when one is down. It counts every answer.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use qbo_sync::proto::v1::{self as pb, customer_sync_service_client::CustomerSyncServiceClient};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

use super::{env::TENANT, names};
use crate::helpers::Bearer;

/// What the callers saw.
#[derive(Debug, Default)]
pub struct PushLog {
    /// Customers recorded (answered OK).
    pub pushed: HashSet<String>,
    /// Answers by gRPC code name.
    pub codes: BTreeMap<String, u64>,
    /// Calls that passed their deadline by more than a second (a hang).
    pub hangs: u64,
}

/// A running pusher; [`Pusher::stop`] ends it and returns the log.
pub struct Pusher {
    stop: CancellationToken,
    task: JoinHandle<()>,
    log: Arc<Mutex<PushLog>>,
}

impl Pusher {
    /// Pushes a new customer every `every` through `channels`, ids from `first` on.
    pub fn start(channels: Vec<Channel>, first: u64, every: Duration) -> Self {
        let stop = CancellationToken::new();
        let log = Arc::new(Mutex::new(PushLog::default()));
        let task = tokio::spawn(run(channels, first, every, stop.clone(), Arc::clone(&log)));
        Self { stop, task, log }
    }

    /// Stops pushing and returns what was seen.
    pub async fn stop(self) -> PushLog {
        self.stop.cancel();
        let _ = self.task.await;
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

async fn run(
    channels: Vec<Channel>,
    first: u64,
    every: Duration,
    stop: CancellationToken,
    log: Arc<Mutex<PushLog>>,
) {
    let mut tick = tokio::time::interval(every);
    let mut index = first;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let id = format!("new-{index}");
        let name = names::name(index);
        index += 1;
        for attempt in 0..20 {
            let channel = channels[(index as usize + attempt) % channels.len()].clone();
            let code = push_one(channel, &id, &name, &log).await;
            if code != Code::Unavailable {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn push_one(channel: Channel, id: &str, name: &str, log: &Mutex<PushLog>) -> Code {
    let mut client = CustomerSyncServiceClient::with_interceptor(
        channel,
        Bearer::token(Some(crate::helpers::TEST_TOKEN)),
    );
    let deadline = Duration::from_secs(5);
    let mut request = tonic::Request::new(pb::UpsertCustomerRequest {
        tenant_id: TENANT.into(),
        customer: Some(pb::DigitCustomer {
            id: id.into(),
            display_name: name.into(),
            ..Default::default()
        }),
        skip_push: false,
    });
    request.set_timeout(deadline);
    let started = tokio::time::Instant::now();
    let answer = tokio::time::timeout(deadline * 3, client.upsert_customer(request)).await;
    let code = match answer {
        Ok(Ok(_)) => Code::Ok,
        Ok(Err(status)) => status.code(),
        Err(_) => Code::DeadlineExceeded,
    };
    let mut log = log.lock().unwrap();
    if started.elapsed() > deadline + Duration::from_secs(1) {
        log.hangs += 1;
    }
    *log.codes.entry(format!("{code:?}")).or_default() += 1;
    if code == Code::Ok {
        log.pushed.insert(id.to_owned());
    }
    code
}

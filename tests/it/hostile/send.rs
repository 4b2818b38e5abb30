//! One raw-bytes client for every RPC: the credentials, the metadata and the body go out as
//! the hostile request says, junk included.

use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::{
    Code,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataValue},
    transport::Channel,
};

use super::{
    requests::{Hostile, Rpc, Who},
    world::{OTHER_TOKEN, READER_TOKEN, VALIDATOR_TOKEN},
};
use crate::helpers::TEST_TOKEN;

/// A request that takes longer than this counts as hung.
const HUNG: Duration = Duration::from_secs(30);

/// Sends bytes as they are and reads answers as bytes: one client for every RPC, and junk
/// bodies are possible.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// The answer to one request: its code, its message, and the last message of an OK answer.
pub struct Answer {
    pub code: Code,
    pub message: String,
    pub body: Option<Vec<u8>>,
}

fn bearer(token: &str) -> AsciiMetadataValue {
    format!("Bearer {token}").parse().unwrap()
}

fn with_credentials(request: &mut tonic::Request<Vec<u8>>, who: Who) {
    let metadata = request.metadata_mut();
    let value = match who {
        Who::Full => bearer(TEST_TOKEN),
        Who::Reader => bearer(READER_TOKEN),
        Who::Validator => bearer(VALIDATOR_TOKEN),
        Who::OtherTenant => bearer(OTHER_TOKEN),
        Who::NoToken => return,
        Who::UnknownToken => bearer("not-a-token-of-anyone"),
        Who::Malformed => "Basic dGVzdDp0ZXN0".parse().unwrap(),
        Who::NotUtf8 => MetadataValue::try_from(&b"Bearer \xff\xfe\xc3\x28token"[..]).unwrap(),
        Who::TwoHeaders => {
            metadata.append("authorization", bearer(TEST_TOKEN));
            bearer(TEST_TOKEN)
        }
    };
    metadata.append("authorization", value);
}

pub async fn send(channel: Channel, hostile: &Hostile) -> Answer {
    let mut request = tonic::Request::new(hostile.body.clone());
    with_credentials(&mut request, hostile.who);
    for (key, value) in &hostile.metadata {
        if key.ends_with("-bin") {
            request
                .metadata_mut()
                .append_bin(*key, BinaryMetadataValue::from_bytes(value));
        } else if let Ok(value) = AsciiMetadataValue::try_from(value.as_slice()) {
            request.metadata_mut().append(*key, value);
        }
    }
    let path = http::uri::PathAndQuery::try_from(hostile.rpc.path()).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("channel not ready: {e}")))?;
        if hostile.rpc == Rpc::WatchSyncRun {
            let mut stream = grpc
                .server_streaming(request, path, RawCodec)
                .await?
                .into_inner();
            let mut last = None;
            while let Some(message) = stream.message().await? {
                last = Some(message);
            }
            Ok(last.unwrap_or_default())
        } else {
            grpc.unary(request, path, RawCodec)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    match tokio::time::timeout(HUNG, call).await {
        Ok(Ok(body)) => Answer {
            code: Code::Ok,
            message: String::new(),
            body: Some(body),
        },
        Ok(Err(status)) => Answer {
            code: status.code(),
            message: status.message().chars().take(300).collect(),
            body: None,
        },
        Err(_) => Answer {
            code: Code::DeadlineExceeded,
            message: format!("no answer within {HUNG:?}"),
            body: None,
        },
    }
}

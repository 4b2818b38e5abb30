//! The protobuf codec of the generated services: prost's, with one change. A message that is
//! not valid protobuf (a bad wire format, a string field that is not UTF-8, a truncated field)
//! is refused as INVALID_ARGUMENT with the usual details, not the INTERNAL that tonic-prost
//! answers: it is the sender's mistake, nothing in the server failed, and an INTERNAL would
//! page whoever watches the error rate whenever a client sends junk. (gRPC's status code
//! table lets libraries answer INTERNAL here; our contract promises INVALID_ARGUMENT for every
//! bad input.) `build.rs` names this codec for every service.

use std::marker::PhantomData;

use bytes::Buf;
use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;

use crate::error::ApiError;

/// prost encoding, and decoding that refuses bad messages as INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Decodes `U`; see [`ProtoCodec`].
#[derive(Debug, Clone, Copy)]
pub struct ProtoDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        decode_message(buf).map(Some)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Decodes one message, refusing a bad one as INVALID_ARGUMENT. The text names the field and
/// the fault (`DigitCustomer.display_name: ... invalid string value: data is not UTF-8
/// encoded`), never the bytes.
fn decode_message<U: Message + Default>(buf: impl Buf) -> Result<U, Status> {
    U::decode(buf).map_err(|e| {
        Status::from(ApiError::invalid(
            "request",
            format!("is not a valid protobuf message: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::proto::v1 as pb;

    fn decode(bytes: &[u8]) -> Result<pb::UpsertCustomerRequest, Status> {
        decode_message(bytes)
    }

    #[test]
    fn a_string_field_that_is_not_utf8_is_invalid_argument() {
        // Field 1 (tenant_id), length-delimited, 2 bytes that are not UTF-8.
        let status = decode(&[0x0a, 0x02, 0xff, 0xfe]).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("UTF-8"), "{}", status.message());
        // A length running past the end, and a wire type that does not exist.
        for junk in [&[0x0a, 0x7f, b'a'][..], &[0x0f, 0x00]] {
            assert_eq!(decode(junk).unwrap_err().code(), Code::InvalidArgument);
        }
        let good = pb::UpsertCustomerRequest {
            tenant_id: "t1".into(),
            ..Default::default()
        };
        assert_eq!(decode(&good.encode_to_vec()).unwrap(), good);
    }
}

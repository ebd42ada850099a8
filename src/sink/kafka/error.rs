//! What a Kafka error means for the connector: retry (transient) or stop (definite).
//!
//! librdkafka retries most broker errors itself (for `delivery_timeout_ms`); what reaches
//! tidemark is either a local problem or a broker error that outlived those retries. Definite
//! are the errors a retry cannot change: a bad client configuration, a message over a size
//! limit, a topic name the broker refuses or a topic that does not exist (tidemark creates
//! its topics first), missing authorization, a failed SASL authentication, and librdkafka's
//! fatal state (the idempotent producer lost its guarantees). Transient are the rest that
//! tidemark knows: a broker or the network gone, timeouts, leaders moving, a full queue.
//! Codes not listed are retried as unclassified (see `crate::error`).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::{Error, Severity};

/// The severity of `code`; `None` when tidemark does not know it.
pub fn code_severity(code: RDKafkaErrorCode) -> Option<Severity> {
    use RDKafkaErrorCode as C;
    use Severity::*;
    match code {
        C::InvalidConfig
        | C::Fatal
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::MessageSizeTooLarge
        | C::MessageBatchTooLarge
        | C::InvalidTopic
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::InvalidRecord
        | C::UnsupportedCompressionType
        | C::PolicyViolation => Some(Definite),
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::MessageTimedOut
        | C::RequestTimedOut
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::QueueFull
        | C::NetworkException
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::NotController
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::CoordinatorLoadInProgress
        | C::KafkaStorageError
        | C::BrokerDestroy
        | C::OutOfOrderSequenceNumber
        | C::InvalidProducerEpoch
        | C::ThrottlingQuotaExceeded
        | C::TopicAlreadyExists => Some(Transient),
        _ => None,
    }
}

/// Classifies a Kafka client error, `what` saying what tidemark was doing.
pub fn kafka_error(what: impl Into<String>, e: KafkaError) -> Error {
    let severity = match e.rdkafka_error_code() {
        Some(code) => code_severity(code),
        None => match e {
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
                Some(Severity::Definite)
            }
            KafkaError::Canceled | KafkaError::NoMessageReceived => Some(Severity::Transient),
            _ => None,
        },
    };
    let what = what.into();
    match severity {
        Some(s) => Error::new(s, what),
        None => Error::unclassified(what),
    }
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn codes_are_sorted_by_what_a_retry_can_change() {
        use Severity::*;
        let table: &[(RDKafkaErrorCode, Option<Severity>)] = &[
            (C::MessageSizeTooLarge, Some(Definite)),
            (C::TopicAuthorizationFailed, Some(Definite)),
            (C::SaslAuthenticationFailed, Some(Definite)),
            (C::InvalidConfig, Some(Definite)),
            (C::Fatal, Some(Definite)),
            (C::UnknownTopicOrPartition, Some(Definite)),
            (C::AllBrokersDown, Some(Transient)),
            (C::BrokerTransportFailure, Some(Transient)),
            (C::MessageTimedOut, Some(Transient)),
            (C::NotLeaderForPartition, Some(Transient)),
            (C::QueueFull, Some(Transient)),
            (C::NotEnoughReplicas, Some(Transient)),
            (C::InvalidSessionTimeout, None),
        ];
        for (code, want) in table {
            assert_eq!(code_severity(*code), *want, "{code:?}");
            let e = kafka_error("producing", KafkaError::MessageProduction(*code));
            assert_eq!(e.severity, want.unwrap_or(Transient), "{code:?}");
            assert_eq!(e.unclassified, want.is_none(), "{code:?}");
        }
    }

    #[test]
    fn errors_without_a_code() {
        let e = kafka_error(
            "creating the producer",
            KafkaError::ClientCreation("bad".into()),
        );
        assert_eq!(e.severity, Severity::Definite);
        assert!(e.to_string().starts_with("creating the producer: "), "{e}");
        assert!(kafka_error("x", KafkaError::Canceled).is_transient());
    }
}

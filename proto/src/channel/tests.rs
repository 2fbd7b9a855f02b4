//! The handshake driven end to end in memory: both sides' state machines with
//! the byte strings handed across by hand, as the connection's first stream
//! will.

use super::*;
use crate::words::WORDS;

const NAMEPLATE: &str = "7";
const PASSWORD: &str = "velvet-harbor";

/// What both ends see of one TLS connection with no one in between.
fn link() -> LinkBinding {
    LinkBinding {
        exporter: vec![0x5a; 32],
        agent_certificate: b"agent certificate".to_vec(),
        console_certificate: b"console certificate".to_vec(),
    }
}

/// Runs both handshakes with each side's view of the connection and
/// returns each side's outcome.
fn handshake_over(
    agent_link: LinkBinding,
    console_link: LinkBinding,
) -> (Result<Channel, ChannelError>, Result<Channel, ChannelError>) {
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, agent_link);
    let (console_hs, console_pake) =
        Handshake::start(Side::Console, NAMEPLATE, PASSWORD, console_link);
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    let agent_tag = agent_conf.confirmation();
    let console_tag = console_conf.confirmation();
    (
        agent_conf.verify(&console_tag),
        console_conf.verify(&agent_tag),
    )
}

/// Runs both handshakes to the end and returns each side's outcome.
fn handshake(
    agent: (&str, &str),
    console: (&str, &str),
) -> (Result<Channel, ChannelError>, Result<Channel, ChannelError>) {
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, agent.0, agent.1, link());
    let (console_hs, console_pake) = Handshake::start(Side::Console, console.0, console.1, link());
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    let agent_tag = agent_conf.confirmation();
    let console_tag = console_conf.confirmation();
    (
        agent_conf.verify(&console_tag),
        console_conf.verify(&agent_tag),
    )
}

/// A confirmed agent and console channel.
fn channels() -> (Channel, Channel) {
    let (agent, console) = handshake((NAMEPLATE, PASSWORD), (NAMEPLATE, PASSWORD));
    (agent.unwrap(), console.unwrap())
}

#[test]
fn full_handshake_gives_both_sides_the_same_verification_words() {
    let (agent, console) = channels();
    assert_eq!(agent.side(), Side::Agent);
    assert_eq!(console.side(), Side::Console);
    assert_eq!(agent.verification_words(), console.verification_words());
}

#[test]
fn verification_words_are_four_words_from_the_list() {
    let (agent, _) = channels();
    let words = agent.verification_words();
    let parts: Vec<&str> = words.split('-').collect();
    assert_eq!(parts.len(), VERIFICATION_WORD_COUNT, "{words}");
    for part in parts {
        assert!(WORDS.contains(&part), "{part} is not in the word list");
    }
}

#[test]
fn both_sides_may_send_their_pake_message_first() {
    // Neither PAKE message depends on the other, so the order in which
    // they cross the relay does not matter.
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    let console_tag = console_conf.confirmation();
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let agent_tag = agent_conf.confirmation();
    assert!(agent_conf.verify(&console_tag).is_ok());
    assert!(console_conf.verify(&agent_tag).is_ok());
}

#[test]
fn wrong_password_is_wrong_code_on_both_sides() {
    let (agent, console) = handshake((NAMEPLATE, PASSWORD), (NAMEPLATE, "velvet-harbour"));
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn different_nameplates_are_wrong_code_on_both_sides() {
    let (agent, console) = handshake(("7", PASSWORD), ("8", PASSWORD));
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn confirmation_tags_differ_by_side() {
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    assert_eq!(agent_conf.confirmation().len(), CONFIRMATION_LEN);
    assert_ne!(agent_conf.confirmation(), console_conf.confirmation());
}

#[test]
fn reflected_confirmation_is_wrong_code() {
    let (agent_hs, _) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
    let (_, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let own = agent_conf.confirmation();
    assert!(matches!(
        agent_conf.verify(&own),
        Err(ChannelError::WrongCode)
    ));
}

#[test]
fn confirmation_of_the_wrong_length_is_wrong_code() {
    for len in [0, 1, CONFIRMATION_LEN - 1, CONFIRMATION_LEN + 1, 64, 1000] {
        let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
        let (console_hs, console_pake) =
            Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
        let agent_conf = agent_hs.receive(&console_pake).unwrap();
        let console_conf = console_hs.receive(&agent_pake).unwrap();
        // The right tag, cut short or padded out, must still be refused.
        let mut tag = console_conf.confirmation();
        tag.resize(len, 0);
        assert!(
            matches!(agent_conf.verify(&tag), Err(ChannelError::WrongCode)),
            "tag of {len} bytes"
        );
    }
}

#[test]
fn malformed_pake_message_is_an_error() {
    let (_, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
    let mut long = agent_pake.clone();
    long.push(0);
    // 'A' and a y coordinate with no point on the curve.
    let mut not_a_point = vec![b'A'];
    not_a_point.extend_from_slice(&NOT_A_POINT);
    let cases: [(&str, &[u8]); 6] = [
        ("empty", b""),
        ("garbage", b"hello, relay"),
        ("short", &agent_pake[..PAKE_MESSAGE_LEN - 1]),
        ("long", &long),
        ("side byte only", &agent_pake[..1]),
        ("not a curve point", &not_a_point),
    ];
    for (name, message) in cases {
        let (console_hs, _) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
        assert!(
            matches!(
                console_hs.receive(message),
                Err(ChannelError::MalformedPake)
            ),
            "{name}"
        );
    }
}

/// A 32-byte y coordinate that does not decompress to an Edwards point.
const NOT_A_POINT: [u8; 32] = [
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn pake_message_reflected_to_its_sender_is_an_error() {
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
    assert!(matches!(
        agent_hs.receive(&agent_pake),
        Err(ChannelError::MalformedPake)
    ));
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
    assert!(matches!(
        console_hs.receive(&console_pake),
        Err(ChannelError::MalformedPake)
    ));
}

#[test]
fn arbitrary_pake_bytes_never_panic() {
    // Every length up to past a real message, with several fillings and
    // both side bytes: each must be an error or a handshake that later
    // fails confirmation, never a panic.
    let (_, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD, link());
    for len in 0..=PAKE_MESSAGE_LEN + 2 {
        for fill in [0x00, 0x42, 0x7f, 0xff] {
            let mut message = vec![fill; len];
            if let Some(first) = message.first_mut() {
                *first = b'B';
            }
            let (agent_hs, _) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD, link());
            if let Ok(confirming) = agent_hs.receive(&message) {
                assert_eq!(len, PAKE_MESSAGE_LEN);
                assert!(matches!(
                    confirming.verify(&console_pake),
                    Err(ChannelError::WrongCode)
                ));
            }
        }
    }
}

#[test]
fn debug_output_hides_the_password_and_keys() {
    let password = "secretword-otherword";
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, password, link());
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, password, link());
    let shown_hs = format!("{agent_hs:?}");
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    let shown_conf = format!("{agent_conf:?}");
    let channel = agent_conf.verify(&console_conf.confirmation()).unwrap();
    let shown_channel = format!("{channel:?}");
    for shown in [&shown_hs, &shown_conf, &shown_channel] {
        assert!(!shown.contains("secretword"), "{shown}");
        assert!(shown.contains("nameplate: \"7\""), "{shown}");
        // A derived Debug would print key bytes as a bracketed list.
        assert!(!shown.contains('['), "{shown}");
    }
}

#[test]
fn error_messages_are_one_lower_case_line() {
    let errors = [ChannelError::WrongCode, ChannelError::MalformedPake];
    for error in errors {
        let message = error.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with(|c: char| c.is_ascii_lowercase()),
            "{message}"
        );
    }
}

#[test]
fn every_stage_can_move_to_another_task() {
    fn assert_send<T: Send + Sync + 'static>() {}
    assert_send::<Handshake>();
    assert_send::<Confirming>();
    assert_send::<Channel>();
    assert_send::<LinkBinding>();
    assert_send::<ChannelError>();
}

#[test]
fn both_sides_share_a_binding_that_no_other_session_has() {
    let (agent, console) = channels();
    assert_eq!(agent.binding(), console.binding());
    // The same code run again gives other keys, so another binding.
    let (again, _) = channels();
    assert_ne!(agent.binding(), again.binding());
}

#[test]
fn a_different_exporter_is_wrong_code_on_both_sides() {
    // A relay that terminates TLS towards each side holds two TLS sessions,
    // so each end exports other keying material.
    let mut other = link();
    other.exporter[0] ^= 1;
    let (agent, console) = handshake_over(link(), other);
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn a_different_agent_certificate_is_wrong_code_on_both_sides() {
    let mut other = link();
    other.agent_certificate = b"the relay's own certificate".to_vec();
    let (agent, console) = handshake_over(link(), other);
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn a_different_console_certificate_is_wrong_code_on_both_sides() {
    let mut other = link();
    other.console_certificate = b"the relay's own certificate".to_vec();
    let (agent, console) = handshake_over(other, link());
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn swapped_certificates_are_wrong_code() {
    let mut swapped = link();
    std::mem::swap(
        &mut swapped.agent_certificate,
        &mut swapped.console_certificate,
    );
    let (agent, console) = handshake_over(link(), swapped);
    assert!(matches!(agent, Err(ChannelError::WrongCode)));
    assert!(matches!(console, Err(ChannelError::WrongCode)));
}

#[test]
fn the_same_connection_gives_both_sides_the_same_words() {
    let (agent, console) = handshake_over(link(), link());
    assert_eq!(
        agent.unwrap().verification_words(),
        console.unwrap().verification_words()
    );
}

//! The channel driven end to end in memory: both sides' state machines with
//! the byte strings handed across by hand, as the framing layer will.

use super::*;
use crate::words::WORDS;

const NAMEPLATE: &str = "7";
const PASSWORD: &str = "velvet-harbor";

/// Runs both handshakes to the end and returns each side's outcome.
fn handshake(
    agent: (&str, &str),
    console: (&str, &str),
) -> (Result<Channel, ChannelError>, Result<Channel, ChannelError>) {
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, agent.0, agent.1);
    let (console_hs, console_pake) = Handshake::start(Side::Console, console.0, console.1);
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

/// Agent's sealer and console's opener of one fresh session.
fn agent_to_console() -> (Sealer, Opener) {
    let (agent, console) = channels();
    (agent.split().0, console.split().1)
}

fn assert_tampered(result: Result<Vec<u8>, ChannelError>) {
    assert!(
        matches!(result, Err(ChannelError::Tampered)),
        "expected Tampered, got {result:?}"
    );
}

/// After a failure nothing opens any more, not even the frame that was due.
fn assert_dead(opener: &mut Opener, due: &[u8]) {
    assert_tampered(opener.open(due));
    assert_tampered(opener.open(b""));
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
fn each_session_gets_its_own_keys() {
    let (first, _) = channels();
    let (second, _) = channels();
    let (mut first_sealer, _) = first.split();
    let (_, mut second_opener) = second.split();
    let sealed = first_sealer.seal(b"hello").unwrap();
    assert_tampered(second_opener.open(&sealed));
}

#[test]
fn both_sides_may_send_their_pake_message_first() {
    // Neither PAKE message depends on the other, so the order in which
    // they cross the relay does not matter.
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    let console_tag = console_conf.confirmation();
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let agent_tag = agent_conf.confirmation();
    assert!(agent_conf.verify(&console_tag).is_ok());
    assert!(console_conf.verify(&agent_tag).is_ok());
}

#[test]
fn messages_open_in_both_directions() {
    let (agent, console) = channels();
    let (mut agent_sealer, mut agent_opener) = agent.split();
    let (mut console_sealer, mut console_opener) = console.split();
    for i in 1..6u8 {
        let down = vec![i; usize::from(i) * 100];
        let sealed = agent_sealer.seal(&down).unwrap();
        assert_eq!(sealed.len(), down.len() + SEAL_OVERHEAD);
        assert_ne!(&sealed[..down.len()], &down[..]);
        assert_eq!(console_opener.open(&sealed).unwrap(), down);

        let up = format!("reply {i}");
        let sealed = console_sealer.seal(up.as_bytes()).unwrap();
        assert_eq!(agent_opener.open(&sealed).unwrap(), up.as_bytes());
    }
}

#[test]
fn empty_message_seals_and_opens() {
    let (mut sealer, mut opener) = agent_to_console();
    let sealed = sealer.seal(b"").unwrap();
    assert_eq!(sealed.len(), SEAL_OVERHEAD);
    assert_eq!(opener.open(&sealed).unwrap(), b"");
    let next = sealer.seal(b"after").unwrap();
    assert_eq!(opener.open(&next).unwrap(), b"after");
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
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
    let agent_conf = agent_hs.receive(&console_pake).unwrap();
    let console_conf = console_hs.receive(&agent_pake).unwrap();
    assert_eq!(agent_conf.confirmation().len(), CONFIRMATION_LEN);
    assert_ne!(agent_conf.confirmation(), console_conf.confirmation());
}

#[test]
fn reflected_confirmation_is_wrong_code() {
    let (agent_hs, _) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
    let (_, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
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
        let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
        let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
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
    let (_, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
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
        let (console_hs, _) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
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
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
    assert!(matches!(
        agent_hs.receive(&agent_pake),
        Err(ChannelError::MalformedPake)
    ));
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
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
    let (_, console_pake) = Handshake::start(Side::Console, NAMEPLATE, PASSWORD);
    for len in 0..=PAKE_MESSAGE_LEN + 2 {
        for fill in [0x00, 0x42, 0x7f, 0xff] {
            let mut message = vec![fill; len];
            if let Some(first) = message.first_mut() {
                *first = b'B';
            }
            let (agent_hs, _) = Handshake::start(Side::Agent, NAMEPLATE, PASSWORD);
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
fn truncated_frame_is_tampered_and_opener_stays_dead() {
    for keep in [0, 1, SEAL_OVERHEAD - 1, SEAL_OVERHEAD, SEAL_OVERHEAD + 4] {
        let (mut sealer, mut opener) = agent_to_console();
        let sealed = sealer.seal(b"a message of some length").unwrap();
        assert_tampered(opener.open(&sealed[..keep]));
        assert_dead(&mut opener, &sealed);
    }
}

#[test]
fn bit_flipped_frame_is_tampered_and_opener_stays_dead() {
    let (mut sealer, mut opener) = agent_to_console();
    let sealed = sealer.seal(b"transfer 10 euros").unwrap();
    // Flip one bit in the body, one in the tag, one at each end.
    for (byte, bit) in [
        (0, 0),
        (5, 3),
        (sealed.len() - SEAL_OVERHEAD, 7),
        (sealed.len() - 1, 7),
    ] {
        let mut flipped = sealed.clone();
        flipped[byte] ^= 1 << bit;
        let (_, mut fresh) = agent_to_console();
        assert_tampered(fresh.open(&flipped));
    }
    let mut flipped = sealed.clone();
    flipped[2] ^= 0x10;
    assert_tampered(opener.open(&flipped));
    assert_dead(&mut opener, &sealed);
}

#[test]
fn extended_frame_is_tampered() {
    let (mut sealer, mut opener) = agent_to_console();
    let mut sealed = sealer.seal(b"message").unwrap();
    sealed.push(0);
    assert_tampered(opener.open(&sealed));
}

#[test]
fn replayed_frame_is_tampered_and_opener_stays_dead() {
    let (mut sealer, mut opener) = agent_to_console();
    let first = sealer.seal(b"run flush-dns").unwrap();
    let second = sealer.seal(b"run flush-dns again").unwrap();
    assert_eq!(opener.open(&first).unwrap(), b"run flush-dns");
    assert_tampered(opener.open(&first));
    assert_dead(&mut opener, &second);
}

#[test]
fn reordered_frames_are_tampered_and_opener_stays_dead() {
    let (mut sealer, mut opener) = agent_to_console();
    let first = sealer.seal(b"first").unwrap();
    let second = sealer.seal(b"second").unwrap();
    assert_tampered(opener.open(&second));
    assert_dead(&mut opener, &first);
}

#[test]
fn dropped_frame_is_tampered() {
    let (mut sealer, mut opener) = agent_to_console();
    let _dropped = sealer.seal(b"first").unwrap();
    let second = sealer.seal(b"second").unwrap();
    assert_tampered(opener.open(&second));
}

#[test]
fn frame_reflected_to_its_sender_is_tampered() {
    let (agent, _) = channels();
    let (mut sealer, mut opener) = agent.split();
    let sealed = sealer.seal(b"to the console").unwrap();
    assert_tampered(opener.open(&sealed));
}

#[test]
fn debug_output_hides_the_password_and_keys() {
    let password = "secretword-otherword";
    let (agent_hs, agent_pake) = Handshake::start(Side::Agent, NAMEPLATE, password);
    let (console_hs, console_pake) = Handshake::start(Side::Console, NAMEPLATE, password);
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
    let errors = [
        ChannelError::WrongCode,
        ChannelError::MalformedPake,
        ChannelError::Tampered,
        ChannelError::Exhausted,
        ChannelError::TooLarge { len: 5 },
    ];
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
    assert_send::<Sealer>();
    assert_send::<Opener>();
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

"""Headers split on the first colon, whichever path the parser takes."""

from callcenter.ami.parser import FrameParser


def parse(frame: bytes):
    (event,) = FrameParser(expect_banner=False, clock=lambda: 0.0).feed(frame + b"\r\n\r\n")
    return event


def test_a_value_with_colons_keeps_them():
    e = parse(b"Event: VarSet\r\nValue: sip:101@10.0.0.1:5060\r\nAppData: ")
    assert e["Value"] == "sip:101@10.0.0.1:5060"
    assert e["AppData"] == ""


def test_a_colon_without_a_space_still_splits_on_the_first_colon():
    """`Key:val: x` is key `Key`, value `val: x` — not key `Key:val`."""
    e = parse(b"Event: UserEvent\r\nKey:val: x\r\nBare:")
    assert e["Key"] == "val: x"
    assert e["Bare"] == ""
    assert "Key:val" not in e.headers


def test_repeated_headers_keep_every_value_in_order():
    e = parse(b"Response: Success\r\nVariable: A=1\r\nVariable: B=2\r\nActionID: x")
    assert e.values("Variable") == ["A=1", "B=2"]
    assert e["Variable"] == "B=2"
    assert e.fields == (
        ("Response", "Success"),
        ("Variable", "A=1"),
        ("Variable", "B=2"),
        ("ActionID", "x"),
    )


def test_fields_of_a_plain_message_follow_the_sent_order():
    e = parse(b"Event: Hangup\r\nChannel: PJSIP/101-00000001\r\nCause: 16")
    assert e.fields == (("Event", "Hangup"), ("Channel", "PJSIP/101-00000001"), ("Cause", "16"))
    assert e.repeated == ()

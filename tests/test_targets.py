"""Name handling is pure: tested without any DNS look-up."""

import pytest

from tracker.targets import TargetError, normalise_host, parse_target, unique_targets


@pytest.mark.parametrize(
    ("text", "key", "base_url"),
    [
        ("mastodon.social", "mastodon.social", "https://mastodon.social"),
        ("MSTDN.jp.", "mstdn.jp", "https://mstdn.jp"),
        ("https://Mastodon.Social/", "mastodon.social", "https://mastodon.social"),
        ("https://mastodon.social:443", "mastodon.social", "https://mastodon.social:443"),
        ("http://127.0.0.1:8081", "127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://[::1]:8081", "[::1]:8081", "http://[::1]:8081"),
        ("  misskey.io  ", "misskey.io", "https://misskey.io"),
        # Non-ASCII names are stored in their IDNA (punycode) form.
        ("ミクシィ.jp", "xn--dckxay2n.jp", "https://xn--dckxay2n.jp"),
        ("https://Bücher.example/", "xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_parse_target_normalises(text: str, key: str, base_url: str) -> None:
    target = parse_target(text)
    assert (target.key, target.base_url) == (key, base_url)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("ftp://example.org", "http or https"),
        ("https://example.org/some/path", "without a path"),
        ("https://user:pw@example.org", "user name"),
        ("exa mple.org", "not a valid host"),
        ("-bad-.example", "not a valid host"),
        ("http://[127.0.0.1]:80", "IPv4 address cannot be in brackets"),
    ],
)
def test_parse_target_refuses(text: str, reason: str) -> None:
    with pytest.raises(TargetError, match=reason):
        parse_target(text)


def test_duplicates_are_collected_once_keeping_first_spelling() -> None:
    targets = unique_targets(["mstdn.jp", "https://MSTDN.JP/", "mstdn.jp.", "pawoo.net"])
    assert [t.key for t in targets] == ["mstdn.jp", "pawoo.net"]
    assert targets[0].base_url == "https://mstdn.jp"


def test_host_normalisation_maps_fullwidth_and_case() -> None:
    # UTS #46 maps full-width Latin letters, as a Japanese keyboard may produce them.
    assert normalise_host("ｍｓｔｄｎ.ｊｐ") == "mstdn.jp"

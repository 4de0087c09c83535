"""The loopback SIP peers now live in the product (duebot.voice.sip_peers, used by `duebot demo`)."""

from duebot.voice.sip_peers import Baresip, start_kamailio

__all__ = ["Baresip", "start_kamailio"]

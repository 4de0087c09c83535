"""The loopback SIP peers now live in the product (duebot.demo.sip_peers, used by `duebot demo`)."""

from duebot.demo.sip_peers import Baresip, start_kamailio

__all__ = ["Baresip", "start_kamailio"]

"""STOP / START / HELP: classify a whole inbound message before anything else sees it.

Two layers.

1. Keywords, on the whole message: the standard carrier keywords (CTIA; Twilio's Advanced Opt-Out uses the same
   lists) plus the pack's own `opt_out_keywords` (data, e.g. the us pack's "opt out", the cn pack's 退订/TD).
   Matching is case- and width-insensitive, after trimming spaces, quotes and trailing punctuation, so "Stop." and
   " stop " opt out.

2. Cease-contact phrases (`phrases=True`; the SMS webhook and the web chat use it for every account, whatever its
   pack or language, so a Chinese request on an English account counts and the other way round). The rule:

   A message opts out when it asks us to stop contacting the subscriber, in either language:
   - English: a STOP-family word alone with at most polite fillers ("please stop", "stop pls", "STOP STOP");
     "stop/quit/cease" + a contact verb or noun ("stop texting me", "stop the calls", "stop sending me messages");
     "don't/do not/never (ever) call/text/message/contact me|this number"; "no more calls/texts";
     "unsubscribe me", "opt me out", "take me off your list", "remove/delete my number", "leave me alone",
     "revoke my consent".
   - Chinese: 退订/退定/拒收/拒绝接收 anywhere (not 退订 of a 业务/套餐/流量/服务/会员/包, which is a product);
     停止 + a contact verb (停止发送/联系/打电话/来电/推送/催收…); 取消 + 订阅/短信/提醒/通知/推送;
     不要/别/不许/不准/请勿/不用 (+再) + (给我/跟我/往我手机上/用任何方式) + 打(电话/了/来/我/这个…)/拨打/发(短信/
     信息/消息/了)/联系(我/了)/打扰/骚扰/找我/烦我/来电; 停/停止/取消 alone; 不想(再)收到…短信/信息/电话,
     不想被联系, 删除我的号码, 把我(的)号码删, 把我从名单….

   The false-positive guard: a stop verb must have a contact object, so merely mentioning stopping does not opt
   out ("don't stop the service", "I can't stop worrying", 停止服务, 别发火, 不要打折); and a negated stop or
   unsubscribe is not a request ("don't stop texting me", "never stop calling", 不要停止发送, 我不想退订,
   别取消订阅), unless the negation is conditional ("if you don't stop calling me I'll complain" does opt out;
   "if you don't call me back" and "why don't you call me" do not).

The dialogue model also has an opt_out intent; these layers are the deterministic floor under it: what they match
never reaches the model.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from enum import Enum

OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT", "退订", "TD")
OPT_IN = ("START", "UNSTOP", "YES START", "SUBSCRIBE")
HELP = ("HELP", "INFO", "帮助")
_TRIM = re.compile(r"^[\s\"'“”‘’]+|[\s.!?。！？,，;；\"'“”‘’~～…]+$")
_SPACES = re.compile(r"\s+")


class Keyword(Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def normalise(text: str) -> str:
    """Fold width (ＳＴＯＰ), case and inner whitespace; strip surrounding quotes and punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _TRIM.sub("", folded))


# ---------------------------------------------------------------- cease-contact phrases

_EN_STOP_WORD = r"(?:stop|stopall|stop all|unsubscribe|cancel|end|quit|revoke|opt ?out|cease)"
_EN_FILLER = r"(?:please|pls|plz|now|already|asap|thanks|thank you|thx|ty|immediately|right now|ok|okay)"
_EN_ALONE = re.compile(rf"^(?:{_EN_FILLER}[ ,.!]*)*{_EN_STOP_WORD}(?:[ ,.!]+(?:{_EN_STOP_WORD}|{_EN_FILLER}))*$")
_EN_CONTACT = (r"(?:texting|calling|messaging|contacting|emailing|e-mailing|bothering|harass(?:ing)?|ringing|"
               r"phoning|sending|texts?|calls?|messages?|sms|emails?|contact)")
_NEG = r"(?:don't|dont|do not|never|not|can't|cannot|won't|wouldn't|didn't)"
_EN_STOP = re.compile(rf"(?<![a-z'])(?P<verb>stop|quit|cease)\s+(?:(?:all|these|the|your|those|this|with the|"
                      rf"with)\s+)?{_EN_CONTACT}(?![a-z])")
_EN_NO_MORE = re.compile(rf"(?<![a-z'])no more\s+{_EN_CONTACT}(?![a-z])")
_EN_DONT = re.compile(r"(?<![a-z'])(?:don't|dont|do not|never)\s+(?:ever\s+)?(?:again\s+)?"
                      r"(?:text|call|message|contact|email|sms|phone|ring|bother|harass)\s+"
                      r"(?:me|this number|my number|my phone|us)(?![a-z])")
_EN_REQUEST = re.compile(r"(?<![a-z'])(?:unsubscribe me|opt me out|take me off (?:your|the|this|of your) list|"
                         r"remove (?:me|my number|my phone)|delete my (?:number|phone)|leave me alone|"
                         r"revoke my consent|i (?:do not|don't|dont) consent|"
                         r"i (?:do not|don't|dont) want (?:any )?(?:more )?(?:of )?(?:your |these )?"
                         r"(?:messages|calls|texts|sms|contact))(?![a-z])")
_EN_CONDITIONAL = re.compile(r"(?:if|unless|when|why)\s+(?:you\s+|u\s+|they\s+)?$")

_ZH_PUNCT = r"(?:$|[\s,.!?;:，。！？；：、~～…])"
_ZH_UNSUBSCRIBE = re.compile(r"(?:退订|退定|拒收|拒绝接收)"
                             r"(?!业务|套餐|流量|服务|会员|包|了?[这那该此]?个?(?:业务|套餐|流量包))")
_ZH_STOP = re.compile(r"(?:停止|取消)(?:给我)?(?:发送|推送|联系|打电话|拨打|来电|呼叫|致电|发短信|发信息|发消息|催收|"
                      r"骚扰|打扰|订阅|短信|所有提醒|提醒|通知|电话)")
_ZH_NEGATED = re.compile(r"(?:不要|别|不用|不想|不需要|不必|无需|不会|没有|没|不能|不|勿)(?:再|去|要|帮我|给我|想)?$")
_ZH_DONT = re.compile(r"(?:不要|别|不许|不准|请勿|勿|不用|不想)(?:再|在)?(?:给我|跟我|往我手机上?|用任何方式|打我)?"
                      rf"(?:打(?:电话|了|来|过来|给我|这个|到)|打我的?(?:手机|电话|号码|了|{_ZH_PUNCT})|打{_ZH_PUNCT}|"
                      rf"拨打|发(?:短信|信息|消息|了|来|给我)|发{_ZH_PUNCT}|联系(?:我|了)|联系{_ZH_PUNCT}|"
                      rf"(?:打扰|骚扰)(?![你您他她])|找我|烦我|来电|致电)")
_ZH_ALONE = re.compile(r"^(?:请|麻烦)?(?:停|停止|取消|退订|退定)(?:吧|了|啊|谢谢|,谢谢|好吗)*$")
_ZH_OTHER = re.compile(r"不想(?:再)?(?:收到?|接到?)(?:你们的?)?(?:任何)?(?:短信|信息|消息|电话|通知)|不想被联系|"
                       r"删除我的(?:手机)?号码|把我的?(?:手机)?号码?删|把我从(?:你们的?)?名单|不接受你们的电话|把我拉黑|"
                       r"再打.{0,4}就?拉黑|(?:电话|短信|信息|消息)+都?(?:别|不要)再?(?:来|发|打)")


_EN_NEG_BEFORE = re.compile(rf"(?<![a-z']){_NEG}\s+(?:ever\s+)?$")


def _en_negated(before: str) -> bool:
    """"don't stop …" is not a request; "if you don't stop …" is."""
    found = _EN_NEG_BEFORE.search(before)
    return found is not None and not _EN_CONDITIONAL.search(before[: found.start()])


def cease_contact(text: str) -> bool:
    """Whether `text` asks us to stop contacting the subscriber (the rule in the module docstring)."""
    said = normalise(text).replace("’", "'").replace("‘", "'")
    if not said:
        return False
    if _EN_ALONE.match(said) or _ZH_ALONE.match(said):
        return True
    for found in _EN_STOP.finditer(said):
        if not _en_negated(said[: found.start()]):
            return True
    if _EN_NO_MORE.search(said) or _EN_REQUEST.search(said):
        return True
    for found in _EN_DONT.finditer(said):
        if not _EN_CONDITIONAL.search(said[: found.start()]):
            return True
    for pattern in (_ZH_UNSUBSCRIBE, _ZH_STOP):
        for found in pattern.finditer(said):
            if not _ZH_NEGATED.search(said[: found.start()]):
                return True
    return bool(_ZH_DONT.search(said) or _ZH_OTHER.search(said))


class KeywordMatcher:
    def __init__(self, extra_opt_out: Iterable[str] = (), phrases: bool = False) -> None:
        """`phrases`: also the cease-contact phrases of both languages (off: carrier keywords only, as Twilio's
        Advanced Opt-Out, which the demo's Twilio fake imitates)."""
        self.phrases = phrases
        self._table: dict[str, Keyword] = {}
        for words, kind in ((HELP, Keyword.HELP), (OPT_IN, Keyword.OPT_IN), (OPT_OUT, Keyword.OPT_OUT),
                            (tuple(extra_opt_out), Keyword.OPT_OUT)):
            for word in words:
                self._table[normalise(word)] = kind  # opt-out last: it wins any overlap

    def classify(self, text: str) -> Keyword | None:
        keyword = self._table.get(normalise(text))
        if keyword is None and self.phrases and cease_contact(text):
            return Keyword.OPT_OUT
        return keyword

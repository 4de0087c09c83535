"""Chinese text as duebot compares it: one Han-character test and one folding, shared by the emotion model
(emotion/zh.py) and the vulnerability signals (policies/vulnerability.py), so both read 律師 as 律师."""

from __future__ import annotations

import re
import unicodedata

_HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN = re.compile(f"[{_HAN_RANGES}]")
_HAN_GAP = re.compile(f"(?<=[{_HAN_RANGES}])\\s+(?=[{_HAN_RANGES}])")


def is_chinese(text: str) -> bool:
    """The routing rule: True when the line holds at least one Han character."""
    return _HAN.search(text) is not None


# Traditional → simplified for the characters a subscriber is likely to type about a phone bill, its payment, money,
# health, family, complaints and the law (typed with a traditional input method, or pasted). Folding them makes
# 律師 / 起訴 / 法院見 / 過世 the same features and the same shared phrases (policies/vulnerability.yml) as
# 律师 / 起诉 / 法院见 / 过世. Pairs: traditional, then simplified.
_TRADITIONAL = (
    "們们這这個个來来說说話话費费錢钱電电號号碼码機机騙骗滾滚爛烂麼么嗎吗還还對对開开關关門门問问間间聽听見见現现"
    "實实業业東东務务動动當当發发經经過过會会後后從从總总點点時时處处應应該该讓让請请謝谢認认識识議议論论調调談谈"
    "訴诉訟讼護护報报險险難难雙双離离頭头題题顧顾飯饭館馆馬马驗验體体為为無无給给結结絕绝統统維维網网線线終终組组"
    "細细級级約约緊紧續续繳缴償偿債债權权師师協协監监違违規规則则罰罚長长張张醫医藥药療疗診诊斷断術术爺爷媽妈兒儿"
    "親亲喪丧禮礼歲岁壓压慮虑憂忧鬱郁幫帮辦办辭辞職职資资貸贷銀银帳账賬账單单額额餘余塊块幾几兩两車车禍祸傷伤殘残"
    "貧贫窮穷飽饱餓饿寬宽遲迟緩缓條条證证據据錄录審审傳传狀状舉举構构員员騷骚擾扰煩烦氣气惱恼罵骂豬猪壞坏搶抢賊贼"
    "盜盗強强詐诈態态語语讀读寫写講讲記记訊讯簡简詳详訂订計计設设許许誰谁試试誤误錯错閉闭層层樓楼殺杀養养撐撑潰溃"
    "淚泪嚇吓亂乱賠赔虧亏損损廠厂產产闆板裡里裏里歡欢樂乐愛爱婦妇懷怀癱瘫瘓痪腫肿腦脑臟脏腎肾檢检區区縣县鄉乡鎮镇"
    "國国際际遊游內内絡络帶带戶户銷销換换轉转貼贴價价賺赚貴贵買买賣卖運运營营廳厅聯联須须嚴严惡恶極极種种樣样爾尔"
    "妳你於于與与並并週周陣阵隻只係系繫系連连鏈链圖图備备慘惨熱热燒烧瘋疯悶闷憤愤厭厌髒脏鬆松獎奖優优補补獲获況况"
    "沒没顯显紀纪歷历擊击敗败輸输責责賴赖納纳稅税卻却雖虽僅仅幹干囉啰唄呗別别邊边遠远進进達达選选適适遺遗遞递針针"
    "鐘钟鬧闹麵面髮发義义習习書书興兴學学帥帅歸归隊队陽阳陰阴灣湾島岛圓圆團团園园夢梦寧宁尋寻導导將将屆届嶺岭廣广"
    "彈弹徹彻複复懶懒擔担攜携暫暂歐欧殼壳溝沟滅灭燈灯爭争獨独環环畫画盤盘確确穩稳競竞筆笔節节範范糧粮糾纠紛纷織织"
    "罷罢聲声腳脚臉脸舊旧藝艺蘇苏蟲虫衛卫製制覺觉觀观訪访評评詞词誠诚謀谋謂谓變变貨货賓宾質质趕赶跡迹踐践較较輕轻"
    "辯辩農农邏逻鄰邻醜丑釋释鋪铺錶表鍵键閱阅陸陆隱隐雞鸡雲云韋韦響响頁页順顺預预領领頻频顏颜願愿類类飛飞駕驾騎骑"
    "驚惊鮮鲜鹽盐黃黄齒齿龜龟憑凭衝冲殯殡儀仪臺台謊谎"
)


def _fold_table(pairs: str) -> dict[int, str]:
    table: dict[int, str] = {}
    for traditional, simplified in zip(pairs[::2], pairs[1::2], strict=True):
        if traditional != simplified and table.setdefault(ord(traditional), simplified) != simplified:
            raise ValueError(f"{traditional} folds to two characters")
    return table


_FOLD = _fold_table(_TRADITIONAL)


def fold(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation to ASCII), traditional characters to simplified, and no
    space between two Han characters (a speech recogniser's transcript puts one between words: 法院 见)."""
    return _HAN_GAP.sub("", unicodedata.normalize("NFKC", text).translate(_FOLD))

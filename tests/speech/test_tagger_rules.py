"""The outcome tags' general rules and "Not …" cases, on sentences written for these tests.

Each case names the README rule or tag section it illustrates. None of the sentences comes from
dev.jsonl; they are short transcripts in the recognizer's style (lowercase, no punctuation,
both speakers merged).
"""

from __future__ import annotations

import pytest

from callcenter.speech.tagger import tag_text


def has(text: str, tag: str) -> bool:
    return tag in tag_text(text)


# --- General rule 1: whose words count ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        # the administrator offering a discount, with no objection from the patient
        (
            "добрый день у нас акция скидка пятнадцать процентов на чистку ой здорово спасибо",
            "price_objection",
        ),
        (
            "могу предложить рассрочку на десять месяцев без переплат хорошо спасибо",
            "price_objection",
        ),
        # the administrator reassuring
        ("не переживайте доктор все сделает аккуратно и быстро хорошо до свидания", "fear"),
        ("бояться не надо у нас хорошая анестезия ладно приду", "fear"),
        ("многие пациенты боятся удаления но у нас все под седацией понятно", "fear"),
        # the administrator recalling the previous call
        (
            "вы в прошлый раз говорили что дорого а сейчас у нас скидка а ну хорошо",
            "price_objection",
        ),
        ("вы говорили что боитесь уколов сейчас у нас есть аппликационная анестезия ага", "fear"),
        # the administrator's own callback promise, even when the patient agrees
        (
            "я уточню у доктора расписание и перезвоню вам после обеда ладно жду",
            "callback_requested",
        ),
        ("мы вам наберем когда придут результаты хорошо спасибо", "callback_requested"),
        # the administrator's "подумайте" and "посмотрим"
        ("вы подумайте и если что звоните нам хорошо", "thinking"),
        ("сейчас посмотрим что есть в расписании на среду", "thinking"),
        # the administrator's "больше не будем беспокоить"
        ("извините за беспокойство больше не будем вас беспокоить всего доброго", "do_not_call"),
    ],
)
def test_rule1_administrator_words_alone_do_not_tag(text, tag):
    assert not has(text, tag)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("у нас есть скидка для пенсионеров все равно для меня дорого", "price_objection"),
        ("не переживайте все будет хорошо да я все равно боюсь", "fear"),
        # a person speaking for the patient
        ("это его жена он в командировке до конца месяца", "no_time"),
        ("это мама сын очень боится врачей плачет", "fear"),
        ("это дочь мама в больнице наберите ей через неделю", "callback_requested"),
    ],
)
def test_rule1_patient_or_someone_for_them_tags(text, tag):
    assert has(text, tag)


def test_rule1_booked_needs_the_administrator_to_accept_the_slot():
    assert not has("запишите меня на пятницу в десять к сожалению на пятницу все занято", "booked")
    assert has("запишите меня на пятницу в десять хорошо записываю на пятницу", "booked")


def test_rule1_insurance_is_a_topic_either_side_may_raise():
    assert has("добрый день звоним по вашей программе дмс ага слушаю", "insurance")
    assert has("а у вас можно по полису от работы", "insurance")


# --- General rule 2: negation and the past ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("сколько стоит три тысячи ну это совсем не дорого", "price_objection"),
        ("пять тысяч недорого давайте", "price_objection"),
        ("цена нормальная не так уж и дорого", "price_objection"),
        ("я не боюсь можно сразу удалять", "fear"),
        ("раньше боялась а теперь уже нормально", "fear"),
        ("уже не страшно спасибо доктору", "fear"),
        ("страха нет никакого", "fear"),
        ("после пломбы как вы все хорошо жалоб нет", "dissatisfied"),
        ("как после удаления ничего не болит спасибо", "dissatisfied"),
        ("можно вам звонить да звоните я не против", "do_not_call"),
        ("времени у меня сейчас полно так что приду", "no_time"),
        ("нет я уже все решила делаю", "thinking"),
    ],
)
def test_rule2_negated_or_finished_state_is_not_tagged(text, tag):
    assert not has(text, tag)


# --- General rule 3: same word, other meaning --------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("ой дорогая моя спасибо что напомнили приду", "price_objection"),
        ("дорогие пациенты клиника работает до девяти", "price_objection"),
        ("я сейчас в дороге еду с дачи", "price_objection"),
        ("дорогу у нас перекопали автобусы не ходят", "price_objection"),
        ("мне страшно неудобно что я пропустила прием", "fear"),
        ("страшно рада вас слышать", "fear"),
        ("боюсь что к десяти не успею можно попозже", "fear"),
        ("боюсь опоздать там пробки", "fear"),
        ("думаю лучше во второй половине дня", "thinking"),
        ("я думала что прием в четверг", "thinking"),
        ("не знаю номер полиса посмотрю дома", "thinking"),
        ("врач сказал что это ничего страшного", "fear"),
    ],
)
def test_rule3_same_word_with_another_meaning_is_not_tagged(text, tag):
    assert not has(text, tag)


# --- General rule 4: wrong number overrides -----------------------------------------------


def test_rule4_wrong_number_drops_everything_about_the_patient():
    text = (
        "здравствуйте по вашему полису дмс вам положена гигиена давайте запишем на пятницу "
        "какой полис тут никакой марины нет вы ошиблись номером извините"
    )
    assert tag_text(text) == {"wrong_number"}


def test_rule4_wrong_number_keeps_do_not_call():
    text = "можно виктора никакого виктора тут нет и больше сюда не звоните извините"
    assert tag_text(text) == {"wrong_number", "do_not_call"}


def test_rule4_a_relative_answering_is_not_a_wrong_number():
    text = "можно ольгу это ее муж она на работе что передать перезвоните ей вечером"
    assert tag_text(text) == {"callback_requested"}


# --- General rule 5: forms are open-ended --------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "tag"),
    [
        ("дороговатенько выходит", "price_objection"),
        ("цены подскочили", "price_objection"),
        ("у вас все подорожало", "price_objection"),
        ("не по карману мне это", "price_objection"),
        ("не потянем мы такое", "price_objection"),
        ("денег сейчас нету", "price_objection"),
        ("с деньгами сейчас туго", "price_objection"),
        ("цены задрали", "price_objection"),
        ("а побюджетнее ничего нет", "price_objection"),
        ("жаба меня душит", "price_objection"),
        ("побаиваюсь я", "fear"),
        ("меня аж трясет", "fear"),
        ("страшновато если честно", "fear"),
        ("испугалась и ушла", "fear"),
        ("нервничаю ужасно", "fear"),
        ("я паникую", "fear"),
        ("наберите меня вечерком", "callback_requested"),
        ("звякните мне завтра", "callback_requested"),
        ("перезвоните попозже", "callback_requested"),
        ("можете перезвонить через час", "callback_requested"),
        ("поразмыслю еще", "thinking"),
        ("пока не определилась", "thinking"),
        ("надо посоветоваться с женой", "thinking"),
        ("дайте время подумать", "thinking"),
        ("пока сомневаюсь", "thinking"),
        ("аврал на работе", "no_time"),
        ("совсем некогда", "no_time"),
        ("в командировке до пятницы", "no_time"),
        ("сижу с малышом не с кем оставить", "no_time"),
        ("переехали в краснодар", "moved_away"),
        ("перебрались в другой город", "moved_away"),
        ("удалите мой номер", "do_not_call"),
        ("отпишите меня от рассылки", "do_not_call"),
        ("хватит мне названивать", "do_not_call"),
        ("нахамили в регистратуре", "dissatisfied"),
        ("прождала полтора часа", "dissatisfied"),
        ("коронка отвалилась через неделю", "dissatisfied"),
        ("лечусь в другой клинике", "went_elsewhere"),
        ("у меня есть свой стоматолог", "went_elsewhere"),
    ],
)
def test_rule5_inflections_aspect_diminutives_and_synonyms_count(phrase, tag):
    assert has(phrase, tag)


# --- Per tag: the "Not …" cases ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "сколько стоит удаление зуба три тысячи поняла спасибо",
        "четыре тысячи цена устраивает записывайте",
        "у других не дешевле так что давайте у вас",
        "дороговато конечно но это того стоит давайте",
        "вы мне в прошлый раз выставили счет дважды это ошибка",
        "отбеливание ничего не дало деньги на ветер",
    ],
)
def test_price_objection_not(text):
    assert not has(text, "price_objection")


@pytest.mark.parametrize(
    "text",
    [
        "напоминаем что вы записаны на завтра на десять да помню приду",
        "на четверг есть окно в двенадцать ой нет в четверг не могу тогда в другой раз",
        "записать вас в лист ожидания да давайте записала в лист ожидания",
        "я сама через сайт запишусь мне так удобнее",
        "я позже перезвоню и запишусь",
        "анализ крови сдается без записи с восьми до одиннадцати",
        "хочу отменить прием в среду хорошо отменила",
    ],
)
def test_booked_not(text):
    assert not has(text, "booked")


def test_booked_includes_a_moved_appointment_and_a_family_member():
    assert has("давайте перенесем на вторник на вторник в девять есть перенесла вас", "booked")
    assert has("и дочку тоже запишите на то же время хорошо записала и дочку", "booked")


@pytest.mark.parametrize(
    "text",
    [
        "я уточню у доктора и перезвоню вам хорошо",
        "я сам вам перезвоню когда решу",
        "сама позвоню в регистратуру",
        "не звоните мне до обеда я на работе",
        "если будут вопросы звоните",
        "вы мне каждую неделю звоните",
    ],
)
def test_callback_requested_not(text):
    assert not has(text, "callback_requested")


def test_callback_vs_thinking_are_independent():
    assert tag_text("я подумаю") == {"thinking"}
    assert tag_text("я подумаю позвоните в пятницу") == {"thinking", "callback_requested"}
    assert tag_text("я подумаю и сам вам позвоню") == {"thinking"}
    assert tag_text("сейчас неудобно перезвоните вечером") == {"callback_requested"}


@pytest.mark.parametrize(
    "text",
    [
        "я за рулем перезвоните через полчаса",
        "я сейчас на совещании наберите после трех",
        "в субботу не могу а в воскресенье давайте в десять записала",
        "только по выходным могу давайте в воскресенье в одиннадцать хорошо записываю",
        "я заболела температура поэтому не пришла",
        "у нас автобус сломался не доехала",
        "я хоть и занята на работе но приду",
        "доктор в отпуске до понедельника",
    ],
)
def test_no_time_not(text):
    assert not has(text, "no_time")


def test_no_time_then_booking_gives_both():
    text = "у меня аврал на работе давайте перенесем на субботу в субботу в десять записала"
    assert tag_text(text) == {"no_time", "booked"}


@pytest.mark.parametrize(
    "text",
    [
        "я уже не боюсь после прошлого раза",
        "боюсь что мест на завтра уже нет",
        "страшно неудобно вас беспокоить",
        "боюсь собак а у вас там во дворе собака",
        "не бойтесь все будет хорошо",
        "не переживайте анестезия хорошая",
    ],
)
def test_fear_not(text):
    assert not has(text, "fear")


def test_fear_of_a_child_reported_by_a_parent_counts():
    assert has("это папа дочка до ужаса боится бормашины", "fear")


@pytest.mark.parametrize(
    "text",
    [
        "я теперь хожу в ваш филиал на другом конце города",
        "хочу к другому вашему доктору к ивановой",
        "может быть пойду в другую клинику не знаю",
        "в другой клинике дешевле",
        "муж лечится в другой клинике а я у вас",
        "мы переехали в самару",
    ],
)
def test_went_elsewhere_not(text):
    assert not has(text, "went_elsewhere")


def test_went_elsewhere_includes_state_clinic_and_doctor_who_left():
    assert has("я уже сделала это в районной поликлинике", "went_elsewhere")
    assert has("доктор от вас ушел и я за ним перешла", "went_elsewhere")


@pytest.mark.parametrize(
    "text",
    [
        "у меня зуб болит третий день можно к врачу сегодня",
        "все хорошо спасибо жалоб нет",
        "немного ноет но доктор предупредил это нормально",
        "дороговато у вас конечно",
    ],
)
def test_dissatisfied_not(text):
    assert not has(text, "dissatisfied")


def test_dissatisfied_includes_a_mild_complaint():
    assert has("все хорошо только ждать пришлось минут сорок", "dissatisfied")


@pytest.mark.parametrize(
    "text",
    [
        "можно андрея это его жена он на работе",
        "кто это а да это я слушаю",
        "вы меня неправильно записали я не смирнова а смирнов",
        "это мой телефон но звонил муж",
    ],
)
def test_wrong_number_not(text):
    assert not has(text, "wrong_number")


@pytest.mark.parametrize(
    "text",
    [
        "не звоните мне до двух часов",
        "на этот номер не звоните звоните на мобильный",
        "звоните я не против",
        "больше не будем вас беспокоить до свидания",
    ],
)
def test_do_not_call_not(text):
    assert not has(text, "do_not_call")


def test_do_not_call_includes_marketing_consent_only():
    assert has("напоминания можно присылать а рекламу не надо", "do_not_call")


@pytest.mark.parametrize(
    "text",
    [
        "я в отпуске в турции до конца месяца",
        "я на вахте на севере еще полгода",
        "мы переехали в соседний дом",
        "наша клиника переехала на новый адрес",
        "может быть переедем в другой город",
    ],
)
def test_moved_away_not(text):
    assert not has(text, "moved_away")


@pytest.mark.parametrize(
    "text",
    [
        "а по омс у вас можно нет только платно",
        "мне нужна страховка на машину по осаго",
        "туристическая страховка для визы у вас оформляется",
    ],
)
def test_insurance_not(text):
    assert not has(text, "insurance")


@pytest.mark.parametrize(
    "text",
    [
        "я подумала и решила делать",
        "давайте летом вернемся к этому",
        "думаю лучше утром",
        "я думала что у меня запись на завтра",
        "не знаю какой у меня номер карты",
        "подумайте и перезвоните нам",
    ],
)
def test_thinking_not(text):
    assert not has(text, "thinking")

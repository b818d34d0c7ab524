"""Source of the 21-points stand-in function base (``assets/function_bases/twentyone.json``).

Each top-level function here is copied verbatim into the JSON by ``build.py``; each must
be self-contained (helpers nested inside) and pass the sandbox's static check. ``state``
is the function-base state of ``ld_agents.ld.games.TWENTYONE``: ranks are strings
``"A"``, ``"2"``..``"10"``, ``"J"``, ``"Q"``, ``"K"``.
"""

# ---------------------------------------------------------------- stage: hand


def best_hand_total(state, prev):
    """My total under the ace rule: every card its value (J, Q, K 10, an ace 1), and one
    ace counts 11 instead when that keeps the total at 21 or less (a soft hand)."""
    total = 0
    has_ace = False
    for card in state["my_cards"]:
        if card == "A":
            total += 1
            has_ace = True
        elif card in ("J", "Q", "K"):
            total += 10
        else:
            total += int(card)
    soft = has_ace and total + 10 <= 21
    if soft:
        total += 10
    return {"total": total, "soft": soft}


def hand_total_aces_as_one(state, prev):
    """My total with every ace counted as 1 (never soft)."""
    total = 0
    for card in state["my_cards"]:
        if card == "A":
            total += 1
        elif card in ("J", "Q", "K"):
            total += 10
        else:
            total += int(card)
    return {"total": total, "soft": False}


def hand_total_aces_as_eleven(state, prev):
    """My total with every ace counted as 11 (soft when there is an ace)."""
    total = 0
    has_ace = False
    for card in state["my_cards"]:
        if card == "A":
            total += 11
            has_ace = True
        elif card in ("J", "Q", "K"):
            total += 10
        else:
            total += int(card)
    return {"total": total, "soft": has_ace}


# ---------------------------------------------------------------- stage: risk


def bust_probability_unseen(state, prev):
    """Add 'p_bust': the chance that one more card takes my total over 21, counted over
    the cards I have not seen (the public deck minus my cards and the opponent's visible
    ones; its face-down card is unseen too). A soft hand cannot bust on one card."""
    counts = dict(state["deck"])
    for card in state["my_cards"] + state["opponent_cards"]:
        counts[card] -= 1
    result = dict(prev)
    n = sum(counts.values())
    if prev["soft"] or n == 0:
        result["p_bust"] = 0.0
        return result
    bust = 0
    for card, k in counts.items():
        value = 1 if card == "A" else (10 if card in ("J", "Q", "K") else int(card))
        if prev["total"] + value > 21:
            bust += k
    result["p_bust"] = bust / n
    return result


def bust_probability_full_deck(state, prev):
    """Add 'p_bust': the chance that one more card takes my total over 21, counted over
    the full 26-card deck (ignoring which cards are already out)."""
    counts = state["deck"]
    result = dict(prev)
    n = sum(counts.values())
    if prev["soft"] or n == 0:
        result["p_bust"] = 0.0
        return result
    bust = 0
    for card, k in counts.items():
        value = 1 if card == "A" else (10 if card in ("J", "Q", "K") else int(card))
        if prev["total"] + value > 21:
            bust += k
    result["p_bust"] = bust / n
    return result


def bust_risk_rule_of_thumb(state, prev):
    """Add 'p_bust' by a rule of thumb: no risk at 11 or less, then 10% more per point
    above 11 (100% at 21); a soft hand has no risk."""
    result = dict(prev)
    if prev["soft"]:
        result["p_bust"] = 0.0
    else:
        result["p_bust"] = min(1.0, max(0.0, (prev["total"] - 11) / 10))
    return result


# ---------------------------------------------------------------- stage: opponent


def opponent_totals_dealer(state, prev):
    """Add 'opponent': the opponent's possible totals as [[total, probability], ...].
    Its face-down card is any unseen card, all equally likely; totals over 21 are
    impossible (it would have lost), and an opponent playing the dealer rule (hit below
    17) that has stood holds 17 or more. With open cards its total is known."""

    def best(cards):
        total = 0
        has_ace = False
        for card in cards:
            if card == "A":
                total += 1
                has_ace = True
            elif card in ("J", "Q", "K"):
                total += 10
            else:
                total += int(card)
        return total + 10 if has_ace and total + 10 <= 21 else total

    visible = state["opponent_cards"]
    result = dict(prev)
    if not state["opponent_hidden"]:
        result["opponent"] = [[best(visible), 1.0]]
        return result
    counts = dict(state["deck"])
    for card in state["my_cards"] + visible:
        counts[card] -= 1
    weights = {}
    for use_rule in (True, False):
        for card, k in counts.items():
            total = best([card, *visible])
            if k <= 0 or total > 21:
                continue
            if use_rule and state["opponent_stood"] and total < 17:
                continue
            weights[total] = weights.get(total, 0) + k
        if weights:
            break
    z = sum(weights.values())
    result["opponent"] = [[t, weights[t] / z] for t in sorted(weights)]
    return result


def opponent_totals_any_hidden(state, prev):
    """Add 'opponent': the opponent's possible totals as [[total, probability], ...],
    its face-down card being any unseen card, all equally likely (totals over 21 left
    out: it would have lost). Assumes nothing about how it plays."""

    def best(cards):
        total = 0
        has_ace = False
        for card in cards:
            if card == "A":
                total += 1
                has_ace = True
            elif card in ("J", "Q", "K"):
                total += 10
            else:
                total += int(card)
        return total + 10 if has_ace and total + 10 <= 21 else total

    visible = state["opponent_cards"]
    result = dict(prev)
    if not state["opponent_hidden"]:
        result["opponent"] = [[best(visible), 1.0]]
        return result
    counts = dict(state["deck"])
    for card in state["my_cards"] + visible:
        counts[card] -= 1
    weights = {}
    for card, k in counts.items():
        total = best([card, *visible])
        if k > 0 and total <= 21:
            weights[total] = weights.get(total, 0) + k
    z = sum(weights.values())
    result["opponent"] = [[t, weights[t] / z] for t in sorted(weights)]
    return result


def opponent_visible_total(state, prev):
    """Add 'opponent': the total of the opponent's visible cards, taken as certain."""
    total = 0
    has_ace = False
    for card in state["opponent_cards"]:
        if card == "A":
            total += 1
            has_ace = True
        elif card in ("J", "Q", "K"):
            total += 10
        else:
            total += int(card)
    if has_ace and total + 10 <= 21:
        total += 10
    result = dict(prev)
    result["opponent"] = [[total, 1.0]]
    return result


def opponent_hidden_is_ten(state, prev):
    """Add 'opponent': assume the face-down card is worth 10 (the most common value) and
    take the resulting total as certain."""
    cards = list(state["opponent_cards"])
    if state["opponent_hidden"]:
        cards.append("10")
    total = 0
    has_ace = False
    for card in cards:
        if card == "A":
            total += 1
            has_ace = True
        elif card in ("J", "Q", "K"):
            total += 10
        else:
            total += int(card)
    if has_ace and total + 10 <= 21:
        total += 10
    result = dict(prev)
    result["opponent"] = [[total, 1.0]]
    return result


# ---------------------------------------------------------------- stage: decide


def beat_stood_opponent(state, prev):
    """The opponent's total is final: compare standing now with taking one more card
    (then standing), by expected result (+1 win, -1 loss, 0 draw) against its possible
    totals, the next card being any unseen card; hit only if that is strictly better
    (by more than rounding error)."""

    def score(total):
        out = 0.0
        for t, p in prev["opponent"]:
            if total > t:
                out += p
            elif total < t:
                out -= p
        return out

    def value(card):
        return 1 if card == "A" else (10 if card in ("J", "Q", "K") else int(card))

    stand = score(prev["total"])
    counts = dict(state["deck"])
    for card in state["my_cards"] + state["opponent_cards"]:
        counts[card] -= 1
    n = sum(counts.values())
    if n == 0:
        return "stand"
    hard = sum(value(c) for c in state["my_cards"])
    has_ace = "A" in state["my_cards"]
    hit = 0.0
    for card, k in counts.items():
        if k <= 0:
            continue
        new_hard = hard + value(card)
        soft = (has_ace or card == "A") and new_hard + 10 <= 21
        total = new_hard + 10 if soft else new_hard
        hit += k / n * (-1.0 if total > 21 else score(total))
    return "hit" if hit > stand + 1e-9 else "stand"


def play_against_strong_card(state, prev):
    """The opponent shows 7 or more and is still drawing: it will likely end on 17-21,
    so aim high. Hit on a hard total of 16 or less or a soft 18 or less; else stand."""
    if prev["soft"]:
        return "hit" if prev["total"] <= 18 else "stand"
    return "hit" if prev["total"] <= 16 else "stand"


def play_against_weak_card(state, prev):
    """The opponent shows 6 or less and is still drawing: it must keep hitting and may
    bust, so take little risk. Hit on 11 or less, stand on 18 or more, and in between
    hit only while the bust probability is below 0.3."""
    if prev["total"] <= 11:
        return "hit"
    if prev["total"] >= 18:
        return "stand"
    return "hit" if prev["p_bust"] < 0.3 else "stand"


def hit_below_17(state, prev):
    """Play the dealer's rule: hit while the total is below 17, then stand."""
    return "hit" if prev["total"] < 17 else "stand"


def hit_if_bust_unlikely(state, prev):
    """Hit while the bust probability is below one half; stand otherwise."""
    return "hit" if prev["p_bust"] < 0.5 else "stand"


def always_stand(state, prev):
    """Never take a card."""
    return "stand"

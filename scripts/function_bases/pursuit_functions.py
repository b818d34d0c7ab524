"""Source of the pursuit stand-in function base (``assets/function_bases/pursuit*.json``).

Each top-level function here is copied verbatim into the JSON by ``build.py``; each must
be self-contained (imports inside, no helpers shared between functions) and pass the
sandbox's static check. Cells are ``[x, y]`` lists; ``state`` is the function-base state
of ``ld_agents.ld.games.PURSUIT``.
"""

# ---------------------------------------------------------------- stage: candidates


def moves_within_two(state, prev):
    """Per pursuer, every on-board cell within Manhattan distance 2 (staying included)."""
    size = state["size"]
    result = []
    for x, y in state["pursuers"]:
        cells = []
        for dx in range(-2, 3):
            for dy in range(-2, 3):
                nx, ny = x + dx, y + dy
                if abs(dx) + abs(dy) <= 2 and 0 <= nx < size and 0 <= ny < size:
                    cells.append([nx, ny])
        result.append(cells)
    return result


def moves_within_one(state, prev):
    """Per pursuer, every on-board cell within Manhattan distance 1 (staying included)."""
    size = state["size"]
    result = []
    for x, y in state["pursuers"]:
        cells = []
        for dx, dy in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
            nx, ny = x + dx, y + dy
            if 0 <= nx < size and 0 <= ny < size:
                cells.append([nx, ny])
        result.append(cells)
    return result


def moves_within_three(state, prev):
    """Per pursuer, every on-board cell within Manhattan distance 3 (staying included)."""
    size = state["size"]
    result = []
    for x, y in state["pursuers"]:
        cells = []
        for dx in range(-3, 4):
            for dy in range(-3, 4):
                nx, ny = x + dx, y + dy
                if abs(dx) + abs(dy) <= 3 and 0 <= nx < size and 0 <= ny < size:
                    cells.append([nx, ny])
        result.append(cells)
    return result


# ---------------------------------------------------------------- stage: filter


def drop_cells_still_occupied(state, prev):
    """Moves resolve in order A, B, C: remove from each pursuer's list the cells of the
    pursuers that move after it (they still stand there when it moves). A cell of an
    earlier pursuer stays listed: it is free if that pursuer moves away, and the select
    stage never gives two pursuers the same target."""
    pursuers = state["pursuers"]
    result = []
    for i, cells in enumerate(prev):
        later = pursuers[i + 1 :]
        result.append([c for c in cells if c not in later])
    return result


def drop_other_pursuer_cells(state, prev):
    """Remove from each pursuer's list the cells where the other two pursuers stand."""
    pursuers = state["pursuers"]
    result = []
    for i, cells in enumerate(prev):
        others = [p for j, p in enumerate(pursuers) if j != i]
        result.append([c for c in cells if c not in others])
    return result


def drop_evader_cell(state, prev):
    """Remove the evader's cell from every pursuer's list."""
    evader = state["evader"]
    return [[c for c in cells if c != evader] for cells in prev]


def drop_occupied_cells(state, prev):
    """Remove every occupied cell (other pursuers and the evader) from each list."""
    pursuers = state["pursuers"]
    result = []
    for i, cells in enumerate(prev):
        blocked = [p for j, p in enumerate(pursuers) if j != i] + [state["evader"]]
        result.append([c for c in cells if c not in blocked])
    return result


def keep_all_cells(state, prev):
    """Keep every cell: no filtering."""
    return [list(cells) for cells in prev]


# ---------------------------------------------------------------- stage: constraints


def no_extra_rule(state, prev):
    """No rule beyond the base game is in force: pass the lists on unchanged."""
    return [list(cells) for cells in prev]


def drop_edge_cells(state, prev):
    """Keep away from the walls: remove cells on the board's outer rows and columns."""
    last = state["size"] - 1
    return [[c for c in cells if 0 < c[0] < last and 0 < c[1] < last] for cells in prev]


def keep_distance_from_evader(state, prev):
    """Do not crowd the evader: remove cells within distance 1 of it."""
    ex, ey = state["evader"]
    return [[c for c in cells if abs(c[0] - ex) + abs(c[1] - ey) > 1] for cells in prev]


# ---------------------------------------------------------------- stage: constraints (emergency)


def drop_restricted_cells(state, prev):
    """Remove the cells inside the restricted area (inclusive corners) from every list."""
    area = state.get("restricted")
    if area is None:
        return [list(cells) for cells in prev]
    x0, y0, x1, y1 = area
    return [[c for c in cells if not (x0 <= c[0] <= x1 and y0 <= c[1] <= y1)] for cells in prev]


# ---------------------------------------------------------------- stage: select


def approach_evader(state, prev):
    """Each pursuer in turn (A, B, C) takes the free cell nearest the evader; among equally
    near cells the one that keeps it on a diagonal line of approach (smallest larger axis
    gap), so the three arrive from their own sides. Never two pursuers on one cell."""
    ex, ey = state["evader"]
    taken = []
    result = []
    for cells in prev:
        best = None
        best_key = None
        for c in cells:
            if c in taken:
                continue
            gap_x, gap_y = abs(c[0] - ex), abs(c[1] - ey)
            key = (gap_x + gap_y, max(gap_x, gap_y))
            if best_key is None or key < best_key:
                best, best_key = c, key
        result.append(best)
        if best is not None:
            taken.append(best)
    return result


def encircle_evader(state, prev):
    """Surround the evader: give the pursuers three distinct slots among the evader's cell
    and its on-board neighbours (the assignment whose slowest pursuer arrives soonest, then
    the shortest total path), and move each pursuer to its free cell nearest its slot."""
    import itertools

    ex, ey = state["evader"]
    size = state["size"]
    slots = []
    for dx, dy in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
        if 0 <= ex + dx < size and 0 <= ey + dy < size:
            slots.append([ex + dx, ey + dy])
    pursuers = state["pursuers"]
    goals = None
    goals_key = None
    for chosen in itertools.permutations(slots, 3):
        dists = [abs(p[0] - s[0]) + abs(p[1] - s[1]) for p, s in zip(pursuers, chosen, strict=True)]
        key = (max((d + 1) // 2 for d in dists), sum(dists))
        if goals_key is None or key < goals_key:
            goals, goals_key = chosen, key
    taken = []
    result = []
    for i, cells in enumerate(prev):
        gx, gy = goals[i]
        best = None
        best_key = None
        for c in cells:
            if c in taken:
                continue
            key = (abs(c[0] - gx) + abs(c[1] - gy), abs(c[0] - ex) + abs(c[1] - ey))
            if best_key is None or key < best_key:
                best, best_key = c, key
        result.append(best)
        if best is not None:
            taken.append(best)
    return result


def move_away_from_evader(state, prev):
    """Each pursuer in turn takes the free cell farthest from the evader."""
    ex, ey = state["evader"]
    taken = []
    result = []
    for cells in prev:
        free = [c for c in cells if c not in taken]
        best = max(free, key=lambda c: abs(c[0] - ex) + abs(c[1] - ey)) if free else None
        result.append(best)
        if best is not None:
            taken.append(best)
    return result


def stay_in_place(state, prev):
    """Each pursuer stays where it is when its own cell is offered, else takes the first
    free cell of its list."""
    taken = []
    result = []
    for i, cells in enumerate(prev):
        free = [c for c in cells if c not in taken]
        own = state["pursuers"][i]
        best = own if own in free else (free[0] if free else None)
        result.append(best)
        if best is not None:
            taken.append(best)
    return result


def pick_any_cell(state, prev):
    """Spread the pursuers out: each takes a free cell picked by a fixed pseudo-random
    rule from its coordinates (no regard for the evader)."""
    taken = []
    result = []
    for i, cells in enumerate(prev):
        free = [c for c in cells if c not in taken]
        if not free:
            result.append(None)
            continue
        x, y = state["pursuers"][i]
        best = free[(31 * x + 17 * y + 7 * i) % len(free)]
        result.append(best)
        taken.append(best)
    return result

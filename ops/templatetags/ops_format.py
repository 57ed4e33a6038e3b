from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as a person reads them: '—', '4.2 s', '27 min 37 s', '3 h 05 min'."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"

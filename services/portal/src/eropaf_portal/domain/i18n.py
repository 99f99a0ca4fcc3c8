"""The portal's words in Dutch (the default) and English (per staff preference `taal`).

DDAS terms (contactsoort, eindresultaat, dagdeel) are the standard's names and stay Dutch in
both languages, as on the forms municipalities know.
"""

from __future__ import annotations

from collections.abc import Callable

from eropaf_portal.domain.model import Language

# key -> (nl, en)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("Eropaf medewerkersportaal", "Eropaf staff portal"),
    "skip": ("Naar de inhoud", "Skip to content"),
    "nav": ("Hoofdmenu", "Main menu"),
    "nav.visits": ("Mijn bezoeken", "My visits"),
    "nav.backlog": ("Achterstand", "Backlog"),
    "nav.capacity": ("Capaciteit", "Capacity"),
    "nav.funnel": ("Trechter", "Funnel"),
    "nav.staff": ("Medewerkers", "Staff"),
    "nav.export": ("DDAS-export", "DDAS export"),
    "logout": ("Uitloggen", "Log out"),
    "language": ("Taal", "Language"),
    "language.save": ("Taal wijzigen", "Change language"),
    "signed_in_as": ("Ingelogd als", "Signed in as"),
    "login.title": ("Inloggen", "Log in"),
    "login.code": ("Uw medewerkerscode", "Your staff code"),
    "login.send": ("Stuur mij een inloglink", "Send me a login link"),
    "login.sent": (
        "Als deze code bij ons bekend is, is er een inloglink naar het e-mailadres gestuurd. "
        "De link werkt één keer en kort.",
        "If this code is known, a login link has been sent to its e-mail address. "
        "The link works once and for a short time.",
    ),
    "login.oidc": ("Inloggen via uw organisatie", "Log in through your organisation"),
    "login.bad_link": (
        "Deze inloglink is ongeldig, verlopen of al gebruikt. Vraag een nieuwe aan.",
        "This login link is invalid, expired or already used. Ask for a new one.",
    ),
    "login.mail_subject": ("Uw inloglink voor Eropaf", "Your Eropaf login link"),
    "login.mail_body": (
        "Open deze link om in te loggen (hij werkt één keer, {minutes} minuten lang):",
        "Open this link to log in (it works once, for {minutes} minutes):",
    ),
    "visits.title": ("Mijn bezoeken", "My visits"),
    "visits.today": ("Vandaag", "Today"),
    "visits.week": ("Deze week", "This week"),
    "visits.later": ("Later", "Later"),
    "visits.none": ("Geen bezoeken.", "No visits."),
    "tasks.title": ("Taken (bellen, brief)", "Tasks (phone, letter)"),
    "col.date": ("Datum", "Date"),
    "col.dagdeel": ("Dagdeel", "Part of day"),
    "col.time": ("Tijd", "Time"),
    "col.gemeente": ("Gemeente", "Municipality"),
    "col.case": ("Casus", "Case"),
    "col.partner": ("Duo-partner", "Duo partner"),
    "col.calendar": ("Agenda", "Calendar"),
    "col.deadline": ("Uiterste datum", "Deadline"),
    "col.reason": ("Reden", "Reason"),
    "col.outreach": ("Aanpak", "Outreach"),
    "col.attempt": ("Poging", "Attempt"),
    "col.contactsoort": ("Contactsoort", "Kind of contact"),
    "col.bereikt": ("Bereikt", "Reached"),
    "col.eindresultaat": ("Eindresultaat", "End result"),
    "col.recorded_by": ("Vastgelegd door", "Recorded by"),
    "col.week": ("Week", "Week"),
    "col.team": ("Team", "Team"),
    "col.planned": ("Gepland", "Planned"),
    "col.available": ("Beschikbaar", "Available"),
    "col.load": ("Bezetting", "Load"),
    "col.code": ("Code", "Code"),
    "col.naam": ("Naam", "Name"),
    "col.organisatie": ("Organisatie", "Organisation"),
    "col.rol": ("Rol", "Role"),
    "col.absences": ("Afwezig", "Absent"),
    "col.status": ("Status", "Status"),
    "ics": ("agenda-bestand", "calendar file"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "case.title": ("Casus", "Case"),
    "case.state": ("Stand", "State"),
    "case.next": ("Volgende poging", "Next attempt"),
    "case.next_planning": (
        "De volgende poging wordt gepland…",
        "The next attempt is being planned…",
    ),
    "case.no_next": ("Geen bezoek gepland.", "No visit planned."),
    "case.ended": ("De aanpak is afgerond:", "The outreach has ended:"),
    "case.attempts": ("Eerdere pogingen", "Earlier attempts"),
    "case.no_attempts": ("Nog geen pogingen.", "No attempts yet."),
    "case.visits": ("Bezoeken", "Visits"),
    "attempt.title": ("Contactpoging vastleggen", "Record a contact attempt"),
    "attempt.reached": ("Is het huishouden bereikt?", "Was the household reached?"),
    "attempt.not_reached": ("Nee, niet bereikt (niet thuis)", "No, not reached (not at home)"),
    "attempt.yes_reached": ("Ja, bereikt", "Yes, reached"),
    "attempt.result_hint": ("Alleen als bereikt.", "Only when reached."),
    "attempt.none": ("— geen —", "— none —"),
    "attempt.visit": ("Bij bezoek", "At visit"),
    "attempt.save": ("Vastleggen", "Record"),
    "attempt.saved": ("Contactpoging vastgelegd.", "Contact attempt recorded."),
    "contact.title": ("Contactgegevens", "Contact details"),
    "contact.explain": (
        "Contactgegevens en adres worden alleen getoond als u het doel opgeeft. "
        "Het opvragen wordt vastgelegd.",
        "Contact details and address are shown only when you state the purpose. "
        "The request is recorded.",
    ),
    "contact.purpose": ("Doel van het opvragen", "Purpose of the request"),
    "contact.show": ("Toon contactgegevens", "Show contact details"),
    "contact.none": ("Geen gegevens (meer) beschikbaar.", "No data (any more)."),
    "contact.shown": (
        "Getoond voor: {purpose}. Dit opvragen is vastgelegd.",
        "Shown for: {purpose}. This request has been recorded.",
    ),
    "backlog.title": ("Achterstand", "Backlog"),
    "backlog.none": ("Geen casussen in de achterstand.", "No cases in the backlog."),
    "capacity.title": ("Capaciteit per week", "Capacity per week"),
    "capacity.none": ("Geen capaciteitsgegevens.", "No capacity figures."),
    "funnel.title": ("Trechter van de maand", "The month's funnel"),
    "funnel.show": ("Toon", "Show"),
    "funnel.month": ("Maand", "Month"),
    "funnel.chart": (
        "Trechter {gemeente}, {first} t/m {last}",
        "Funnel {gemeente}, {first} to {last}",
    ),
    "staff.title": ("Medewerkers", "Staff"),
    "staff.absence": ("Afwezigheid vastleggen", "Record an absence"),
    "staff.member": ("Medewerker", "Staff member"),
    "staff.from": ("Van", "From"),
    "staff.to": ("Tot en met", "To (inclusive)"),
    "staff.save": ("Afwezig melden en opnieuw plannen", "Mark absent and replan"),
    "staff.recorded": (
        "{code} is afwezig van {first} t/m {last}; {moved} bezoek(en) verplaatst.",
        "{code} is absent from {first} to {last}; {moved} visit(s) moved.",
    ),
    "staff.visits_of": ("Bezoeken van {code}", "Visits of {code}"),
    "export.title": ("DDAS-export per gemeente", "DDAS export per municipality"),
    "export.download": ("Download DDAS-bestand", "Download DDAS file"),
    "error.title": ("Er ging iets mis", "Something went wrong"),
    "error.403": (
        "U hebt geen toegang tot deze pagina of casus.",
        "You have no access to this page or case.",
    ),
    "error.404": ("Niet gevonden.", "Not found."),
    "error.csrf": (
        "Het formulier is verlopen of ongeldig. Laad de pagina opnieuw.",
        "The form expired or is invalid. Reload the page.",
    ),
    "error.unavailable": (
        "Een achterliggende dienst is niet bereikbaar. Probeer het later opnieuw.",
        "A back-end service is unreachable. Try again later.",
    ),
    "error.invalid": ("Ongeldige invoer:", "Invalid input:"),
    "back": ("Terug", "Back"),
    # enumerations
    "reason.no_counsellor_available": (
        "geen schuldhulpverlener beschikbaar",
        "no counsellor available",
    ),
    "reason.no_employee_available": (
        "geen medewerker van de corporatie beschikbaar",
        "no corporation employee available",
    ),
    "reason.capacity_exhausted": ("capaciteit uitgeput", "capacity exhausted"),
    "reason.deadline_passed": ("uiterste datum verstreken", "deadline passed"),
    "outreach.home_visit": ("huisbezoek", "home visit"),
    "outreach.phone": ("telefonisch", "phone"),
    "outreach.letter": ("brief", "letter"),
    "state.open": ("lopend", "open"),
    "state.ended": ("afgerond", "ended"),
    "state.closed": ("gesloten", "closed"),
    "status.planned": ("gepland", "planned"),
    "status.done": ("gedaan", "done"),
    "status.cancelled": ("geannuleerd", "cancelled"),
    "role.medewerker": ("medewerker", "employee"),
    "role.schuldhulpverlener": ("schuldhulpverlener", "debt counsellor"),
    "role.coordinator": ("coördinator", "coordinator"),
    "funnel.signals": ("Signalen", "Signals"),
    "funnel.cases": ("Casussen", "Cases"),
    "funnel.outreach": ("Benaderd", "Approached"),
    "funnel.reached": ("Bereikt", "Reached"),
    "funnel.help_accepted": ("Hulp aanvaard", "Help accepted"),
}


def translator(language: Language) -> Callable[..., str]:
    """`t(key, **values)`: the message in `language`; an unknown key shows as itself."""
    index = 0 if language is Language.NL else 1

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t

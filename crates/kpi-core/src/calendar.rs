//! The reporting calendar: when a period's data window closes, when each kind of unit must
//! have reported it, and whether a report came on time.
//!
//! A period's data are cut off either at the end of the period (`calendar`) or, as Decree
//! 09/2019/NĐ-CP on reporting regimes has it, on the 14th of the period's last month
//! (`decree-09`). Deadlines count working days after the cut-off; holidays are data (Tết
//! moves every year), so the catalog lists them. [`ReportingRates`] are DHIS2's
//! REPORTING_RATE and REPORTING_RATE_ON_TIME.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::period::Period;

/// Vietnam keeps UTC+7 all year round (no daylight saving time).
const VIETNAM_UTC_OFFSET: TimeDelta = TimeDelta::hours(7);

/// The reporting date of an instant: its date in Vietnam (UTC+7, no DST).
///
/// This is the one place that turns an instant into a reporting date, so an upload at
/// 23:30 on a deadline day in Vietnam (16:30 UTC) counts as on that day everywhere.
pub fn local_date(utc: DateTime<Utc>) -> NaiveDate {
    (utc.naive_utc() + VIETNAM_UTC_OFFSET).date()
}

/// How long a period is; a kind of unit's schedule lists the lengths it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeriodType {
    Yearly,
    HalfYearly,
    Quarterly,
    Monthly,
}

impl PeriodType {
    /// The type of a period, so a schedule can say which periods a kind of unit owes.
    pub fn of(period: Period) -> PeriodType {
        match period {
            Period::Year(_) => PeriodType::Yearly,
            Period::Half(..) => PeriodType::HalfYearly,
            Period::Quarter(..) => PeriodType::Quarterly,
            Period::Month(..) => PeriodType::Monthly,
        }
    }

    /// The name the catalog uses, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodType::Yearly => "yearly",
            PeriodType::HalfYearly => "half-yearly",
            PeriodType::Quarterly => "quarterly",
            PeriodType::Monthly => "monthly",
        }
    }
}

/// Where a period's data window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Cutoff {
    /// The window is the period itself: first day of its first month to last day of its last.
    #[default]
    #[serde(rename = "calendar")]
    Calendar,
    /// Decree 09/2019/NĐ-CP: from the 15th of the month before the period to the 14th of its
    /// last month, so the report can be written before the period ends.
    #[serde(rename = "decree-09")]
    Decree09,
}

/// The dates a period's figures cover, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataWindow {
    pub first: NaiveDate,
    /// The cut-off: the window's last day, from which deadlines are counted.
    pub cutoff: NaiveDate,
}

/// What one kind of unit owes: which period types, and how soon after the cut-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSchedule {
    pub period_types: Vec<PeriodType>,
    /// The deadline is this many working days after the cut-off (0: the cut-off itself).
    pub deadline_working_days: u32,
}

/// Whether a unit's report for a period came in time, as of some date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timeliness {
    /// First accepted on or before the deadline.
    OnTime,
    /// First accepted after the deadline.
    Late,
    /// Nothing accepted, and the deadline has passed.
    Missing,
    /// Nothing accepted yet, and the deadline has not passed.
    NotDue,
}

impl Timeliness {
    /// The status of a report due on `deadline`, whose first accepted revision came on
    /// `first_accepted` (none yet), judged on `as_of`: the one rule, for callers that already
    /// know the deadline.
    pub fn judge(deadline: NaiveDate, first_accepted: Option<NaiveDate>, as_of: NaiveDate) -> Timeliness {
        match first_accepted {
            Some(accepted) if accepted <= deadline => Timeliness::OnTime,
            Some(_) => Timeliness::Late,
            None if as_of > deadline => Timeliness::Missing,
            None => Timeliness::NotDue,
        }
    }

    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeliness::OnTime => "on_time",
            Timeliness::Late => "late",
            Timeliness::Missing => "missing",
            Timeliness::NotDue => "not_due",
        }
    }
}

/// The reporting calendar of a catalog: cut-off rule, schedules per kind of unit, holidays,
/// and when a period closes by itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportingCycle {
    pub cutoff: Cutoff,
    /// Schedules by kind of unit (`commune`, `district`, ...); a kind without one owes every
    /// period type with a deadline on the cut-off day.
    pub schedules: BTreeMap<String, KindSchedule>,
    /// Public holidays, which are not working days.
    pub holidays: BTreeSet<NaiveDate>,
    /// Calendar days after its deadline that a period stays open for a unit (see
    /// [`ReportingCycle::closes_on`]); `None`: periods never close by themselves.
    pub close_after_days: Option<u32>,
}

impl ReportingCycle {
    /// The dates a period's figures cover under this cycle's cut-off rule.
    pub fn window(&self, period: Period) -> DataWindow {
        let year = period.year();
        let (first_month, last_month) = period.months();
        let (first_month, last_month) = (u32::from(first_month), u32::from(last_month));
        match self.cutoff {
            Cutoff::Calendar => {
                let (next_year, next_month) = if last_month == 12 { (year + 1, 1) } else { (year, last_month + 1) };
                let first_of_next = date(next_year, next_month, 1);
                DataWindow { first: date(year, first_month, 1), cutoff: first_of_next - Days::new(1) }
            }
            Cutoff::Decree09 => {
                let (previous_year, previous_month) =
                    if first_month == 1 { (year - 1, 12) } else { (year, first_month - 1) };
                DataWindow { first: date(previous_year, previous_month, 15), cutoff: date(year, last_month, 14) }
            }
        }
    }

    /// Whether units of `kind` owe a report for `period` at all.
    pub fn is_due(&self, kind: &str, period: Period) -> bool {
        self.schedules.get(kind).is_none_or(|schedule| schedule.period_types.contains(&PeriodType::of(period)))
    }

    /// The last day on which a unit of `kind` reports `period` on time: the Nth working day
    /// strictly after the cut-off, or the cut-off itself when N is 0.
    pub fn deadline(&self, kind: &str, period: Period) -> NaiveDate {
        let working_days = self.schedules.get(kind).map_or(0, |schedule| schedule.deadline_working_days);
        let mut day = self.window(period).cutoff;
        let mut counted = 0;
        while counted < working_days {
            day = day + Days::new(1);
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        day
    }

    /// The first day on which `period` is closed for units of `kind`: `close_after_days`
    /// calendar days after the deadline are still open, the day after is not (deadline + N + 1).
    pub fn closes_on(&self, kind: &str, period: Period) -> Option<NaiveDate> {
        let open_days = self.close_after_days?;
        Some(self.deadline(kind, period) + Days::new(u64::from(open_days) + 1))
    }

    /// Whether people work on `date`: not a Saturday, Sunday or listed holiday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// How many working days after the deadline `as_of` is: the working days in
    /// (deadline, as_of], 0 when `as_of` is not after the deadline.
    ///
    /// Counted, not walked: a national completeness judges eleven thousand late reports, each
    /// hundreds of days late. The tests hold it equal to walking the days.
    pub fn working_days_late(&self, deadline: NaiveDate, as_of: NaiveDate) -> u32 {
        if as_of <= deadline {
            return 0;
        }
        let weekdays = weekdays_through(as_of) - weekdays_through(deadline);
        let holidays = self
            .holidays
            .range((Bound::Excluded(deadline), Bound::Included(as_of)))
            .filter(|day| !matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
            .count();
        u32::try_from(weekdays - i64::try_from(holidays).unwrap_or(i64::MAX)).unwrap_or(0)
    }

    /// How a unit of `kind` stands for `period` on `as_of`, given the local date its first
    /// accepted revision was received. Whether the unit owes the period at all is
    /// [`ReportingCycle::is_due`]'s question.
    pub fn timeliness(
        &self,
        kind: &str,
        period: Period,
        first_accepted: Option<NaiveDate>,
        as_of: NaiveDate,
    ) -> Timeliness {
        Timeliness::judge(self.deadline(kind, period), first_accepted, as_of)
    }
}

/// Monday-to-Friday days from 1 January of year 1 (a Monday) through `day`.
fn weekdays_through(day: NaiveDate) -> i64 {
    let days = i64::from(day.num_days_from_ce());
    days.div_euclid(7) * 5 + days.rem_euclid(7).min(5)
}

/// A date that exists for every well-formed period: its year is 1990–2100 and the day is 1,
/// 14 or 15, so the fallback is never taken (a hand-built `Period` outside those bounds gets
/// a meaningless date rather than a panic).
fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// Counts of due units for one period, from which DHIS2's REPORTING_RATE and
/// REPORTING_RATE_ON_TIME follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportingRates {
    /// Units that owe the period.
    pub expected: u32,
    /// Of those, units with an accepted report.
    pub reported: u32,
    /// Of those, units whose first accepted report met the deadline.
    pub on_time: u32,
}

impl ReportingRates {
    /// Counts one unit that owes the period (callers skip units for which `is_due` is false).
    pub fn add(&mut self, timeliness: Timeliness) {
        self.expected += 1;
        if matches!(timeliness, Timeliness::OnTime | Timeliness::Late) {
            self.reported += 1;
        }
        if timeliness == Timeliness::OnTime {
            self.on_time += 1;
        }
    }

    /// Adds another subtree's counts, as a parent's rates are its children's together.
    pub fn merge(&mut self, other: &ReportingRates) {
        self.expected += other.expected;
        self.reported += other.reported;
        self.on_time += other.on_time;
    }

    /// Reported over expected, 0 to 1; 0 when nothing is expected.
    pub fn reporting_rate(&self) -> f64 {
        ratio(self.reported, self.expected)
    }

    /// Reported on time over expected, 0 to 1; 0 when nothing is expected.
    pub fn on_time_rate(&self) -> f64 {
        ratio(self.on_time, self.expected)
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 { 0.0 } else { f64::from(part) / f64::from(whole) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// Vietnam's 2024–2025 weekday holidays around the dates the tests cross.
    fn vietnam_2024_2025() -> BTreeSet<NaiveDate> {
        [
            "2024-01-01",
            "2024-02-08",
            "2024-02-09",
            "2024-02-12",
            "2024-02-13",
            "2024-02-14",
            "2024-04-18",
            "2024-04-29",
            "2024-04-30",
            "2024-05-01",
            "2024-09-02",
            "2024-09-03",
            "2025-01-01",
            "2025-01-27",
            "2025-01-28",
            "2025-01-29",
            "2025-01-30",
            "2025-01-31",
            "2025-04-07",
            "2025-04-30",
            "2025-05-01",
            "2025-05-02",
            "2025-09-01",
            "2025-09-02",
        ]
        .into_iter()
        .map(day)
        .collect()
    }

    fn cycle(cutoff: Cutoff) -> ReportingCycle {
        let schedule = |period_types: &[PeriodType], deadline_working_days| KindSchedule {
            period_types: period_types.to_vec(),
            deadline_working_days,
        };
        let all = [PeriodType::Yearly, PeriodType::HalfYearly, PeriodType::Quarterly, PeriodType::Monthly];
        ReportingCycle {
            cutoff,
            schedules: BTreeMap::from([
                ("commune".to_owned(), schedule(&all, 2)),
                ("district".to_owned(), schedule(&[PeriodType::HalfYearly, PeriodType::Yearly], 5)),
                ("province".to_owned(), schedule(&all, 10)),
            ]),
            holidays: vietnam_2024_2025(),
            close_after_days: Some(30),
        }
    }

    #[test]
    fn windows_and_deadlines() {
        use Cutoff::{Calendar, Decree09};
        // (cut-off rule, period, kind, first day, cut-off, deadline), worked out on a calendar.
        let cases = [
            // Crosses the year end; cut-off Tuesday 14 Jan 2025: Wed 15, Thu 16.
            (Decree09, "2025-01", "commune", "2024-12-15", "2025-01-14", "2025-01-16"),
            // District, 5 working days: Wed 15, Thu 16, Fri 17, Mon 20, Tue 21 Jan.
            (Decree09, "2025-01", "district", "2024-12-15", "2025-01-14", "2025-01-21"),
            // Province, 10 working days: Wed 15 … Fri 24 Jan make 8, Tết (27–31 Jan) and two
            // weekends are skipped, then Mon 3 and Tue 4 Feb.
            (Decree09, "2025-01", "province", "2024-12-15", "2025-01-14", "2025-02-04"),
            // Cut-off Friday 14 Feb 2025: Mon 17, Tue 18.
            (Decree09, "2025-02", "commune", "2025-01-15", "2025-02-14", "2025-02-18"),
            // Cut-off Friday 31 Jan 2025, the last day of Tết: Mon 3, Tue 4 Feb.
            (Calendar, "2025-01", "commune", "2025-01-01", "2025-01-31", "2025-02-04"),
            // Cut-off Monday 14 Apr 2025: Tue 15, Wed 16.
            (Decree09, "2025-04", "commune", "2025-03-15", "2025-04-14", "2025-04-16"),
            // Cut-off Wednesday 30 Apr 2025; 1–2 May are off, then the weekend: Mon 5, Tue 6 May.
            (Calendar, "2025-04", "commune", "2025-04-01", "2025-04-30", "2025-05-06"),
            // Cut-off Tuesday 30 Apr 2024; 1 May is off: Thu 2, Fri 3 May.
            (Calendar, "2024-04", "commune", "2024-04-01", "2024-04-30", "2024-05-03"),
            // Quarter 1 under the decree starts in December; cut-off Friday 14 Mar: Mon 17, Tue 18.
            (Decree09, "2025Q1", "commune", "2024-12-15", "2025-03-14", "2025-03-18"),
            // Cut-off Friday 14 Jun 2024: Mon 17, Tue 18.
            (Decree09, "2024Q2", "commune", "2024-03-15", "2024-06-14", "2024-06-18"),
            // Cut-off Monday 30 Jun 2025: Tue 1, Wed 2 Jul.
            (Calendar, "2025Q2", "commune", "2025-04-01", "2025-06-30", "2025-07-02"),
            // Cut-off Saturday 14 Jun 2025: Mon 16 … Fri 20.
            (Decree09, "2025S1", "district", "2024-12-15", "2025-06-14", "2025-06-20"),
            // Cut-off Saturday 14 Dec 2024: Mon 16, Tue 17.
            (Decree09, "2024S2", "commune", "2024-06-15", "2024-12-14", "2024-12-17"),
            // Cut-off Tuesday 31 Dec 2024; 1 Jan is off: Thu 2, Fri 3, Mon 6, Tue 7, Wed 8 Jan.
            (Calendar, "2024S2", "district", "2024-07-01", "2024-12-31", "2025-01-08"),
            (Calendar, "2024", "district", "2024-01-01", "2024-12-31", "2025-01-08"),
            // Cut-off Sunday 14 Dec 2025: Mon 15 … Fri 19.
            (Decree09, "2025", "district", "2024-12-15", "2025-12-14", "2025-12-19"),
            // A kind without schedule is due on the cut-off itself, even a Sunday.
            (Decree09, "2025", "agency", "2024-12-15", "2025-12-14", "2025-12-14"),
            // Leap year: cut-off Thursday 29 Feb 2024: Fri 1, Mon 4 Mar.
            (Calendar, "2024-02", "commune", "2024-02-01", "2024-02-29", "2024-03-04"),
        ];
        for (cutoff, code, kind, first, last, deadline) in cases {
            let cycle = cycle(cutoff);
            let period = Period::parse(code).unwrap();
            let window = cycle.window(period);
            assert_eq!((window.first, window.cutoff), (day(first), day(last)), "{cutoff:?} {code}");
            assert_eq!(cycle.deadline(kind, period), day(deadline), "{cutoff:?} {code} {kind}");
        }
    }

    #[test]
    fn due_period_types() {
        let cycle = cycle(Cutoff::Decree09);
        assert!(cycle.is_due("district", Period::Half(2025, 1)));
        assert!(cycle.is_due("district", Period::Year(2025)));
        assert!(!cycle.is_due("district", Period::Quarter(2025, 1)));
        assert!(!cycle.is_due("district", Period::Month(2025, 1)));
        assert!(cycle.is_due("commune", Period::Month(2025, 1)));
        assert!(cycle.is_due("agency", Period::Month(2025, 1)), "a kind without schedule owes everything");
        assert_eq!(PeriodType::of(Period::Quarter(2025, 3)), PeriodType::Quarterly);
    }

    #[test]
    fn timeliness_statuses() {
        let cycle = cycle(Cutoff::Decree09);
        let period = Period::Half(2025, 1);
        let deadline = cycle.deadline("commune", period);
        assert_eq!(deadline, day("2025-06-17"));
        let status =
            |accepted: Option<&str>, as_of: &str| cycle.timeliness("commune", period, accepted.map(day), day(as_of));
        assert_eq!(status(Some("2025-06-10"), "2025-07-01"), Timeliness::OnTime);
        assert_eq!(status(Some("2025-06-17"), "2025-06-17"), Timeliness::OnTime, "the deadline day is on time");
        assert_eq!(status(Some("2025-06-18"), "2025-07-01"), Timeliness::Late);
        assert_eq!(status(None, "2025-06-18"), Timeliness::Missing);
        assert_eq!(status(None, "2025-06-17"), Timeliness::NotDue);
        let names: Vec<&str> = [Timeliness::OnTime, Timeliness::Late, Timeliness::Missing, Timeliness::NotDue]
            .into_iter()
            .map(Timeliness::as_str)
            .collect();
        assert_eq!(names, ["on_time", "late", "missing", "not_due"]);
    }

    #[test]
    fn working_days_late_skip_weekends_and_holidays() {
        let cycle = cycle(Cutoff::Decree09);
        // Friday 24 Jan 2025 to Tuesday 4 Feb: weekend, Tết (27–31 Jan), weekend, Mon 3, Tue 4.
        assert_eq!(cycle.working_days_late(day("2025-01-24"), day("2025-02-04")), 2);
        // Friday 13 Jun 2025 to Monday 16 Jun: the weekend does not count.
        assert_eq!(cycle.working_days_late(day("2025-06-13"), day("2025-06-16")), 1);
        assert_eq!(cycle.working_days_late(day("2025-06-13"), day("2025-06-15")), 0);
        assert_eq!(cycle.working_days_late(day("2025-06-13"), day("2025-06-13")), 0);
        assert_eq!(cycle.working_days_late(day("2025-06-13"), day("2025-06-01")), 0);
        assert!(!cycle.is_working_day(day("2025-09-02")));
        assert!(cycle.is_working_day(day("2025-09-03")));
    }

    /// The counted working days against the obvious walk over the days, for ranges starting on
    /// every day of 2024–2025 and ending up to three years later, with a holiday on a weekend.
    #[test]
    fn counted_working_days_equal_walking_the_days() {
        let mut cycle = cycle(Cutoff::Decree09);
        cycle.holidays.insert(day("2025-05-03"));
        let walked = |deadline: NaiveDate, as_of: NaiveDate| -> u32 {
            deadline.iter_days().skip(1).take_while(|d| *d <= as_of).filter(|d| cycle.is_working_day(*d)).count() as u32
        };
        let mut state: u64 = 7;
        for deadline in day("2024-01-01").iter_days().take(731) {
            for _ in 0..4 {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let as_of = deadline + Days::new((state >> 33) % 1100) - Days::new(3);
                assert_eq!(cycle.working_days_late(deadline, as_of), walked(deadline, as_of), "{deadline} → {as_of}");
            }
        }
    }

    #[test]
    fn closes_after_the_grace_days() {
        let mut cycle = cycle(Cutoff::Decree09);
        // Deadline Tuesday 17 Jun 2025; open through 17 Jul (deadline + 30), closed from 18 Jul.
        assert_eq!(cycle.closes_on("commune", Period::Half(2025, 1)), Some(day("2025-07-18")));
        cycle.close_after_days = Some(0);
        assert_eq!(cycle.closes_on("commune", Period::Half(2025, 1)), Some(day("2025-06-18")));
        cycle.close_after_days = None;
        assert_eq!(cycle.closes_on("commune", Period::Half(2025, 1)), None);
    }

    #[test]
    fn rates_count_due_units() {
        let mut rates = ReportingRates::default();
        assert_eq!((rates.reporting_rate(), rates.on_time_rate()), (0.0, 0.0));
        for status in [Timeliness::OnTime, Timeliness::Late, Timeliness::Missing, Timeliness::NotDue] {
            rates.add(status);
        }
        assert_eq!(rates, ReportingRates { expected: 4, reported: 2, on_time: 1 });
        assert_eq!((rates.reporting_rate(), rates.on_time_rate()), (0.5, 0.25));
    }

    #[test]
    fn local_date_is_vietnam_time() {
        let instant = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        assert_eq!(local_date(instant("2025-06-17T16:59:59Z")), day("2025-06-17"));
        assert_eq!(local_date(instant("2025-06-17T17:00:00Z")), day("2025-06-18"));
        assert_eq!(local_date(instant("2024-12-31T18:00:00Z")), day("2025-01-01"));
    }

    #[test]
    fn cycle_survives_json() {
        let cycle = cycle(Cutoff::Decree09);
        let text = serde_json::to_string(&cycle).unwrap();
        assert!(text.contains("\"decree-09\"") && text.contains("\"half-yearly\"") && text.contains("\"2025-01-27\""));
        assert_eq!(serde_json::from_str::<ReportingCycle>(&text).unwrap(), cycle);
        assert_eq!(serde_json::from_str::<ReportingCycle>("{}").unwrap(), ReportingCycle::default());
    }
}

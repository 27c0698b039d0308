"""Financial features from fiscal years t-1 .. t-4 (as-of year t).

Inputs are the financials columns of fiscal year t-1 under their own names (``revenue``),
t-2 with suffix ``_prev``, t-3 ``_prev2`` and t-4 ``_prev3``: float64 Series indexed by
firm_id, NaN where the firm has no row for that year or the value is missing (booleans as
1.0/0.0/NaN, rd_institution as strings). Every function is pure and vectorised; a ratio
with a zero or missing denominator is NaN, never 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import domain
from features.catalogue import feature, passthrough

GROUP = "financials"
SIZE_CLASSES = ["micro", "small", "medium", "large"]
RD_INSTITUTION_LEVELS = {"none": 0.0, "city": 1.0, "provincial": 2.0, "national": 3.0}

# MIIT 2011 No. 300, industry: thresholds in persons and CNY. The large limits are the SME
# limits of features.domain.
MEDIUM_EMPLOYEES, MEDIUM_REVENUE = 300, 20e6
SMALL_EMPLOYEES, SMALL_REVENUE = 20, 3e6

# Raw inputs of fiscal year t-1 (t-2 for rd_expense_prev) exposed unchanged.
PASSTHROUGHS = (
    passthrough("revenue", GROUP, "operating revenue, fiscal year t-1", "CNY",
                "size / 新 R&D band", pillar="size",
                label_en="revenue (t-1)", label_zh="营业收入"),
    passthrough("main_revenue", GROUP, "main-business revenue, t-1", "CNY", "专 main share",
                pillar="specialization",
                label_en="main-business revenue (t-1)", label_zh="主营业务收入"),
    passthrough("employees", GROUP, "headcount at end of t-1", "persons", "size",
                pillar="size", label_en="employees (t-1)", label_zh="从业人员数"),
    passthrough("total_assets", GROUP, "total assets, t-1", "CNY", "精 debt ratio",
                pillar="size", label_en="total assets (t-1)", label_zh="资产总额"),
    passthrough("net_profit", GROUP, "net profit, t-1", "CNY", "精 net margin",
                pillar="refinement", label_en="net profit (t-1)", label_zh="净利润"),
    passthrough("rd_expense", GROUP, "R&D expense, t-1", "CNY", "新 R&D",
                pillar="innovation", label_en="R&D expense (t-1)", label_zh="研发费用"),
    passthrough("rd_expense_prev", GROUP, "R&D expense, t-2", "CNY", "新 R&D",
                pillar="innovation", label_en="R&D expense (t-2)", label_zh="上年研发费用"),
    passthrough("domestic_share", GROUP, "national market share of the main product, t-1",
                "fraction", "特 national market share", pillar="distinctiveness",
                label_en="national market share", label_zh="主导产品全国细分市场占有率"),
    passthrough("domestic_rank", GROUP,
                "national rank of the main product by market share, t-1 (1 = leader)", "rank",
                "特 / champion market position", pillar="distinctiveness",
                label_en="national market rank", label_zh="主导产品全国市场排名"),
    passthrough("global_rank", GROUP, "world rank of the main product by market share, t-1",
                "rank", "champion global top 3", pillar="distinctiveness",
                label_en="global market rank", label_zh="主导产品全球市场排名"),
    passthrough("high_tech", GROUP,
                "holds a High and New Technology Enterprise certificate, t-1", "1/0",
                "innovative direct condition", pillar="innovation",
                label_en="High and New Technology Enterprise", label_zh="高新技术企业"),
    passthrough("quality_cert", GROUP,
                "management-system or developed-market product certification, t-1", "1/0",
                "精 quality", pillar="refinement",
                label_en="quality certification", label_zh="管理体系或产品认证"),
    passthrough("own_brand", GROUP, "sells the main product under its own brand, t-1", "1/0",
                "特 own brand", pillar="refinement",
                label_en="own brand", label_zh="自主品牌"),
)


# The helpers below compute on the columns' float64 arrays and wrap the result once:
# the same IEEE arithmetic as the Series expressions, without pandas' fixed cost per
# operation (a one-firm request evaluates them some forty times).
def _values(x: pd.Series) -> np.ndarray:
    return x.to_numpy(dtype=np.float64, na_value=np.nan)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    d = _values(denominator)
    with np.errstate(all="ignore"):
        out = _values(numerator) / np.where(d != 0, d, np.nan)
    return pd.Series(out, index=numerator.index)


def _growth(current: pd.Series, base: pd.Series) -> pd.Series:
    """Growth as a fraction; a non-positive base (revenue cannot shrink from 0) is NaN."""
    b = _values(base)
    with np.errstate(all="ignore"):
        out = _values(current) / np.where(b > 0, b, np.nan) - 1.0
    return pd.Series(out, index=current.index)


def _signed_growth(current: pd.Series, base: pd.Series) -> pd.Series:
    # Profit can be negative: dividing by |base| keeps the sign meaning "improved", as the
    # provincial scoring guides compute growth of net profit.
    c, b = _values(current), _values(base)
    with np.errstate(all="ignore"):
        out = (c - b) / np.where(b != 0, np.abs(b), np.nan)
    return pd.Series(out, index=current.index)


def _log(x: pd.Series) -> pd.Series:
    v = _values(x)
    with np.errstate(all="ignore"):
        out = np.log1p(np.where(v >= 0, v, np.nan))
    return pd.Series(out, index=x.index)


# --- size -------------------------------------------------------------------------------

@feature(GROUP, "log(1 + CNY)", "size", pillar="size",
         label_en="log revenue (t-1)", label_zh="营业收入（对数）")
def log_revenue(revenue: pd.Series) -> pd.Series:
    """natural log of 1 + revenue, t-1"""
    return _log(revenue)


@feature(GROUP, "log(1 + CNY)", "size", pillar="size",
         label_en="log total assets (t-1)", label_zh="资产总额（对数）")
def log_total_assets(total_assets: pd.Series) -> pd.Series:
    """natural log of 1 + total assets, t-1"""
    return _log(total_assets)


@feature(GROUP, "log(1 + persons)", "size", pillar="size",
         label_en="log employees (t-1)", label_zh="从业人员数（对数）")
def log_employees(employees: pd.Series) -> pd.Series:
    """natural log of 1 + headcount, t-1"""
    return _log(employees)


@feature(GROUP, "category", "size: MIIT 2011 No. 300", kind="category", pillar="size",
         label_en="size class", label_zh="企业规模类型")
def size_class(employees: pd.Series, revenue: pd.Series) -> pd.Series:
    """SME size class (micro/small/medium/large) by the MIIT 2011 industry rule, t-1"""
    emp, rev = employees.to_numpy(float), revenue.to_numpy(float)
    code = np.select(
        [
            (emp >= domain.SME_EMPLOYEES) & (rev >= domain.SME_REVENUE),
            (emp >= MEDIUM_EMPLOYEES) & (rev >= MEDIUM_REVENUE),
            (emp >= SMALL_EMPLOYEES) & (rev >= SMALL_REVENUE),
        ],
        [SIZE_CLASSES.index("large"), SIZE_CLASSES.index("medium"), SIZE_CLASSES.index("small")],
        default=SIZE_CLASSES.index("micro"),
    )
    code[np.isnan(emp) | np.isnan(rev)] = -1
    return pd.Series(pd.Categorical.from_codes(code, categories=SIZE_CLASSES),
                     index=employees.index)


@feature(GROUP, "1/0", "size: SME", pillar="size",
         label_en="SME", label_zh="中小企业")
def is_sme(employees: pd.Series, revenue: pd.Series) -> pd.Series:
    """1 if below 1,000 employees or below 400M revenue (an SME), 0 if large, t-1"""
    # NaN only when the known figures cannot tell (features.domain.is_sme).
    return pd.Series(domain.is_sme(employees, revenue), index=employees.index)


# --- growth -----------------------------------------------------------------------------

@feature(GROUP, "fraction", "专 growth", pillar="specialization",
         label_en="revenue growth (1 year)", label_zh="营业收入增长率")
def revenue_growth_1y(revenue: pd.Series, revenue_prev: pd.Series) -> pd.Series:
    """revenue growth t-2 -> t-1"""
    return _growth(revenue, revenue_prev)


@feature(GROUP, "fraction", "", pillar="specialization",
         label_en="revenue growth (2 years)", label_zh="近2年营业收入累计增长率")
def revenue_growth_2y(revenue: pd.Series, revenue_prev2: pd.Series) -> pd.Series:
    """cumulative revenue growth t-3 -> t-1"""
    return _growth(revenue, revenue_prev2)


@feature(GROUP, "fraction", "", pillar="specialization",
         label_en="revenue growth (3 years)", label_zh="近3年营业收入累计增长率")
def revenue_growth_3y(revenue: pd.Series, revenue_prev3: pd.Series) -> pd.Series:
    """cumulative revenue growth t-4 -> t-1"""
    return _growth(revenue, revenue_prev3)


@feature(GROUP, "fraction", "专 2-year average growth", pillar="specialization",
         label_en="2-year average revenue growth", label_zh="近2年营业收入平均增长率")
def revenue_growth_2y_avg(
    revenue: pd.Series, revenue_prev: pd.Series, revenue_prev2: pd.Series
) -> pd.Series:
    """mean of the yearly revenue growth rates t-2 -> t-1 and t-3 -> t-2"""
    return (_growth(revenue, revenue_prev) + _growth(revenue_prev, revenue_prev2)) / 2


@feature(GROUP, "fraction", "innovative 主营 growth", pillar="specialization",
         label_en="main-business revenue growth (1 year)", label_zh="主营业务收入增长率")
def main_revenue_growth_1y(main_revenue: pd.Series, main_revenue_prev: pd.Series) -> pd.Series:
    """main-business revenue growth t-2 -> t-1"""
    return _growth(main_revenue, main_revenue_prev)


@feature(GROUP, "fraction", "", pillar="specialization",
         label_en="main-business revenue growth (2 years)", label_zh="近2年主营业务收入累计增长率")
def main_revenue_growth_2y(main_revenue: pd.Series, main_revenue_prev2: pd.Series) -> pd.Series:
    """cumulative main-business revenue growth t-3 -> t-1"""
    return _growth(main_revenue, main_revenue_prev2)


@feature(GROUP, "fraction", "", pillar="specialization",
         label_en="main-business revenue growth (3 years)", label_zh="近3年主营业务收入累计增长率")
def main_revenue_growth_3y(main_revenue: pd.Series, main_revenue_prev3: pd.Series) -> pd.Series:
    """cumulative main-business revenue growth t-4 -> t-1"""
    return _growth(main_revenue, main_revenue_prev3)


@feature(GROUP, "fraction", "专 little giant main-business growth", pillar="specialization",
         label_en="2-year average main-business revenue growth", label_zh="近2年主营业务收入平均增长率")
def main_revenue_growth_2y_avg(
    main_revenue: pd.Series, main_revenue_prev: pd.Series, main_revenue_prev2: pd.Series
) -> pd.Series:
    """mean of the yearly main-business growth rates t-2 -> t-1 and t-3 -> t-2"""
    return (
        _growth(main_revenue, main_revenue_prev) + _growth(main_revenue_prev, main_revenue_prev2)
    ) / 2


@feature(GROUP, "fraction", "", pillar="specialization",
         label_en="net profit growth (1 year)", label_zh="净利润增长率")
def net_profit_growth_1y(net_profit: pd.Series, net_profit_prev: pd.Series) -> pd.Series:
    """net profit growth t-2 -> t-1, relative to |t-2 profit|"""
    return _signed_growth(net_profit, net_profit_prev)


@feature(GROUP, "fraction", "2018 little giant growth", pillar="specialization",
         label_en="2-year average net profit growth", label_zh="近2年净利润平均增长率")
def net_profit_growth_2y_avg(
    net_profit: pd.Series, net_profit_prev: pd.Series, net_profit_prev2: pd.Series
) -> pd.Series:
    """mean of the yearly net-profit growth rates (relative to |base|) over t-3 -> t-1"""
    return (
        _signed_growth(net_profit, net_profit_prev)
        + _signed_growth(net_profit_prev, net_profit_prev2)
    ) / 2


@feature(GROUP, "fraction", "", pillar="size",
         label_en="employee growth (1 year)", label_zh="从业人员增长率")
def employees_growth_1y(employees: pd.Series, employees_prev: pd.Series) -> pd.Series:
    """headcount growth t-2 -> t-1"""
    return _growth(employees, employees_prev)


@feature(GROUP, "CNY", "champion 2023: 3-year average main-business revenue", pillar="size",
         label_en="3-year average main-business revenue", label_zh="近3年主营业务收入平均")
def main_revenue_3y_avg(
    main_revenue: pd.Series, main_revenue_prev: pd.Series, main_revenue_prev2: pd.Series
) -> pd.Series:
    """mean main-business revenue of fiscal years t-1, t-2 and t-3 (NaN if any is unknown)"""
    return (main_revenue + main_revenue_prev + main_revenue_prev2) / 3


# --- R&D --------------------------------------------------------------------------------

@feature(GROUP, "fraction", "新 R&D intensity", pillar="innovation",
         label_en="R&D intensity", label_zh="研发费用占营业收入比重")
def rd_intensity(rd_expense: pd.Series, revenue: pd.Series) -> pd.Series:
    """R&D expense / revenue, t-1"""
    return _ratio(rd_expense, revenue)


@feature(GROUP, "fraction", "新 R&D intensity (each of 2 years)", pillar="innovation",
         label_en="R&D intensity (t-2)", label_zh="上年研发费用占营业收入比重")
def rd_intensity_prev(rd_expense_prev: pd.Series, revenue_prev: pd.Series) -> pd.Series:
    """R&D expense / revenue, t-2"""
    return _ratio(rd_expense_prev, revenue_prev)


@feature(GROUP, "fraction", "新 R&D intensity (each of 2 years)", pillar="innovation",
         label_en="lower R&D intensity of 2 years", label_zh="近2年研发费用占比较低值")
def rd_intensity_2y_min(rd_intensity: pd.Series, rd_intensity_prev: pd.Series) -> pd.Series:
    """lower of the R&D intensities of t-1 and t-2"""
    now, before = _values(rd_intensity), _values(rd_intensity_prev)
    both = ~np.isnan(now) & ~np.isnan(before)
    return pd.Series(np.where(both, np.fmin(now, before), np.nan), index=rd_intensity.index)


@feature(GROUP, "CNY", "新 R&D over 2 years", pillar="innovation",
         label_en="R&D expense over 2 years", label_zh="近2年研发费用合计")
def rd_expense_2y_sum(rd_expense: pd.Series, rd_expense_prev: pd.Series) -> pd.Series:
    """R&D expense t-1 + t-2 (NaN if either year is unknown)"""
    return rd_expense + rd_expense_prev


@feature(GROUP, "CNY", "specialized direct condition: 2-year average R&D", pillar="innovation",
         label_en="2-year average R&D expense", label_zh="近2年研发费用平均")
def rd_expense_2y_avg(rd_expense_2y_sum: pd.Series) -> pd.Series:
    """average yearly R&D expense over t-1 and t-2"""
    return rd_expense_2y_sum / 2


@feature(GROUP, "CNY", "", pillar="innovation",
         label_en="R&D expense over 3 years", label_zh="近3年研发费用合计")
def rd_expense_3y_sum(rd_expense_2y_sum: pd.Series, rd_expense_prev2: pd.Series) -> pd.Series:
    """R&D expense t-1 + t-2 + t-3 (NaN if any year is unknown)"""
    return rd_expense_2y_sum + rd_expense_prev2


@feature(GROUP, "fraction", "新 R&D staff share", pillar="innovation",
         label_en="R&D staff share", label_zh="研发人员占从业人员比重")
def rd_staff_share(rd_staff: pd.Series, employees: pd.Series) -> pd.Series:
    """R&D staff / employees, t-1"""
    return _ratio(rd_staff, employees)


@feature(GROUP, "level 0-3", "新 R&D institution", pillar="innovation",
         label_en="R&D institution level", label_zh="研发机构级别")
def rd_institution_level(rd_institution: pd.Series) -> pd.Series:
    """highest R&D institution run: 0 none, 1 city, 2 provincial, 3 national, t-1"""
    return rd_institution.map(RD_INSTITUTION_LEVELS).astype("float64")  # NaN: unknown label


# --- structure and performance ----------------------------------------------------------

@feature(GROUP, "fraction", "专 main share", pillar="specialization",
         label_en="main-business share of revenue", label_zh="主营业务收入占营业收入比重")
def main_share(main_revenue: pd.Series, revenue: pd.Series) -> pd.Series:
    """main-business revenue / revenue, t-1"""
    return _ratio(main_revenue, revenue)


@feature(GROUP, "fraction", "精 net margin", pillar="refinement",
         label_en="net margin", label_zh="净利润率")
def net_margin(net_profit: pd.Series, revenue: pd.Series) -> pd.Series:
    """net profit / revenue, t-1"""
    return _ratio(net_profit, revenue)


@feature(GROUP, "fraction", "", pillar="refinement",
         label_en="return on assets", label_zh="总资产收益率")
def roa(net_profit: pd.Series, total_assets: pd.Series) -> pd.Series:
    """return on assets: net profit / total assets, t-1"""
    return _ratio(net_profit, total_assets)


@feature(GROUP, "fraction", "精 debt ratio", pillar="refinement",
         label_en="debt ratio", label_zh="资产负债率")
def debt_ratio(total_liabilities: pd.Series, total_assets: pd.Series) -> pd.Series:
    """total liabilities / total assets, t-1"""
    return _ratio(total_liabilities, total_assets)


@feature(GROUP, "fraction", "", pillar="distinctiveness",
         label_en="export share of revenue", label_zh="出口收入占营业收入比重")
def export_share(export_revenue: pd.Series, revenue: pd.Series) -> pd.Series:
    """export revenue / revenue, t-1"""
    return _ratio(export_revenue, revenue)


@feature(GROUP, "fraction", "selection anomaly: state support", pillar="ownership",
         label_en="subsidies to revenue", label_zh="政府补助占营业收入比重")
def subsidies_to_revenue(subsidies: pd.Series, revenue: pd.Series) -> pd.Series:
    """government subsidies / revenue, t-1"""
    return _ratio(subsidies, revenue)


@feature(GROUP, "CNY", "specialized / little giant equity in 2 years", pillar="size",
         label_en="equity raised in 2 years", label_zh="近2年新增股权融资")
def equity_raised_2y(equity_raised: pd.Series, equity_raised_prev: pd.Series) -> pd.Series:
    """new equity raised in t-1 + t-2 (NaN if either year is unknown)"""
    return equity_raised + equity_raised_prev


@feature(GROUP, "CNY", "innovative direct condition: equity in 3 years", pillar="size",
         label_en="equity raised in 3 years", label_zh="近3年新增股权融资")
def equity_raised_3y(equity_raised_2y: pd.Series, equity_raised_prev2: pd.Series) -> pd.Series:
    """new equity raised in t-1 + t-2 + t-3 (NaN if any year is unknown)"""
    return equity_raised_2y + equity_raised_prev2


@feature(GROUP, "years", "", pillar="history",
         label_en="years of known financials", label_zh="已知财务数据年数")
def financial_years_known(
    revenue: pd.Series, revenue_prev: pd.Series, revenue_prev2: pd.Series,
    revenue_prev3: pd.Series,
) -> pd.Series:
    """how many of fiscal years t-1 .. t-4 have a known revenue"""
    known = sum((~np.isnan(_values(s))).astype(float) for s in (revenue, revenue_prev,
                                                                revenue_prev2, revenue_prev3))
    return pd.Series(known, index=revenue.index)

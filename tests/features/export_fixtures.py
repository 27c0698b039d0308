"""A contract dataset turned into the exports people actually hold: Chinese headers, money
in 万元 (written in the header), GB18030 and UTF-16 files, semicolons and tabs, an Excel
workbook, founding dates instead of years, and the granted titles as a name-only MIIT list
whose names are written the way lists write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import load_dataset
from features.importing.names import normalise_name
from features.regions import PROVINCE_TABLE

FIRMS = {"firm_id": "统一社会信用代码", "name": "企业名称", "province": "所属省份",
         "industry_code": "行业代码", "niche_entry_year": "进入细分领域年份",
         "parent_id": "母公司代码", "parent_employees": "母公司员工人数",
         "parent_revenue": "母公司营业收入(万元)", "state_share": "国有持股比例",
         "listed_board": "上市板块"}
FINANCIALS = {"firm_id": "统一社会信用代码", "year": "会计年度", "revenue": "营业收入（万元）",
              "main_revenue": "主营业务收入(万元)", "net_profit": "净利润(万元)",
              "total_assets": "资产总计(万元)", "total_liabilities": "负债合计(万元)",
              "rd_expense": "研发费用(万元)", "employees": "员工人数", "rd_staff": "研发人员",
              "export_revenue": "出口收入(万元)", "equity_raised": "股权融资(万元)",
              "subsidies": "政府补助(万元)", "domestic_rank": "国内排名",
              "domestic_share": "国内市场占有率", "global_rank": "全球排名",
              "rd_institution": "研发机构级别", "high_tech": "高新技术企业",
              "quality_cert": "质量认证", "own_brand": "自主品牌"}
PATENTS = {"patent_id": "申请号", "firm_id": "统一社会信用代码", "kind": "专利类型",
           "filed": "申请日", "granted": "授权日", "lapsed": "失效日", "ipc": "IPC分类号"}
KINDS_ZH = {"invention": "发明", "utility": "实用新型", "design": "外观设计",
            "software": "软件著作权"}
TIERS_ZH = {"innovative": "创新型中小企业", "specialized": "专精特新中小企业",
            "little_giant": "专精特新“小巨人”企业", "champion": "制造业单项冠军企业"}
CHINESE_NUMBERS = "零一二三四五六七八九十"
MONEY = [c for c, h in {**FIRMS, **FINANCIALS}.items() if "万元" in h]


def vary_name(name: str, how: int) -> str:
    """A firm name as a list might write it; `how` picks the variation."""
    province = next((p for p in PROVINCE_TABLE["aliases"].str.split("|").str[0]
                     if name.startswith(p)), "")
    if how == 0:
        return name  # exact
    if how == 1:
        return name.replace("有限公司", "股份有限公司") if "股份" not in name else \
            name.replace("股份有限公司", "有限公司")
    if how == 2:
        return f"{name[:len(province)]} {name[len(province):]}"  # a space after the province
    if how == 3:
        return name[len(province):] if province else name  # without the province
    if how == 4:
        legal = "股份有限公司" if name.endswith("股份有限公司") else "有限公司"
        return name[: -len(legal)] + "（集团）" + legal  # full-width brackets
    middle = len(name) // 2
    return name[:middle] + "新" + name[middle:]  # one character more: fuzzy


def chinese_export(src: Path, dst: Path, seed: int = 0) -> dict:
    """Write the exports of dataset `src` into `dst`; returns the list's variations used
    and the names that are not any firm's (expected unmatched)."""
    rng = np.random.default_rng(seed)
    ds = load_dataset(src)
    dst.mkdir(parents=True, exist_ok=True)
    firms = ds.firms.copy()
    for column in MONEY:
        if column in firms:
            firms[column] = firms[column] / 1e4
    names_zh = PROVINCE_TABLE["name_zh"]
    out = firms.rename(columns=FIRMS).assign(所属省份=firms["province"].map(names_zh), 成立日期=firms["founded_year"].astype(str) + "-06-30")
    out = out[[*FIRMS.values(), "成立日期"]]
    out.to_csv(dst / "企业名录.csv", index=False, encoding="gb18030")

    fin = ds.financials.copy()
    for column in MONEY:
        if column in fin:
            fin[column] = fin[column] / 1e4
    fin.rename(columns=FINANCIALS)[list(FINANCIALS.values())].to_csv(
        dst / "财务数据.csv", index=False, sep=";", encoding="utf-8-sig")

    patents = ds.patents.assign(kind=ds.patents["kind"].map(KINDS_ZH))
    for column in ("filed", "granted", "lapsed"):
        patents[column] = patents[column].dt.strftime("%Y-%m-%d")
    patents.rename(columns=PATENTS)[list(PATENTS.values())].to_csv(
        dst / "专利.csv", index=False, sep="\t", encoding="utf-16")

    certs = ds.certifications.merge(firms[["firm_id", "name", "province"]], on="firm_id")
    key = certs["name"].map(normalise_name) + "|" + certs["province"]
    all_keys = firms["name"].map(normalise_name) + "|" + firms["province"]
    unique_key = key.map(all_keys.value_counts()) == 1
    listed = (certs["event"] == "granted") & unique_key
    how = rng.integers(0, 6, size=int(listed.sum()))
    miit = pd.DataFrame({
        "企业名称": [vary_name(n, h) for n, h in zip(certs.loc[listed, "name"], how)],
        "称号": certs.loc[listed, "tier"].map(TIERS_ZH).to_numpy(),
        "年度": certs.loc[listed, "year"].to_numpy(),
        "批次": ["" if pd.isna(b) else f"第{CHINESE_NUMBERS[int(b)]}批" if b <= 10
               else str(int(b)) for b in certs.loc[listed, "batch"]],
        "省份": certs.loc[listed, "province"].map(names_zh).to_numpy()})
    strangers = ["不存在精密仪器有限公司", "虚构新材料科技股份有限公司"]
    miit = pd.concat([miit, pd.DataFrame({"企业名称": strangers, "称号": "专精特新中小企业",
                                          "年度": 2024, "批次": "", "省份": "浙江省"})],
                     ignore_index=True)
    miit.to_excel(dst / "专精特新名单.xlsx", index=False)
    # Renewals, revocations and titles of firms whose name is not unique: with codes.
    rest = certs.loc[~listed, ["firm_id", "tier", "year", "batch", "event"]]
    rest.rename(columns={"firm_id": "统一社会信用代码", "tier": "称号", "year": "年度",
                         "batch": "批次", "event": "事件"}).to_csv(
        dst / "认定结果.csv", index=False, encoding="gb18030")
    return {"variations": np.bincount(how, minlength=6).tolist(), "strangers": strangers,
            "listed": int(listed.sum()), "with_codes": int((~listed).sum())}

"""Fixed reference lists shared by forms, demo data and search filters.

Each entry is (code, English label, Chinese label); codes are what the database stores.
"""

INSTITUTION_TYPES = [
    ("bank", "Bank", "银行"),
    ("venture_capital", "Venture capital", "创业投资机构"),
    ("guarantee", "Financing guarantee", "融资担保机构"),
    ("insurance", "Technology insurance", "科技保险机构"),
    ("ip_agency", "IP agency", "知识产权代理机构"),
    ("evaluation_centre", "Evaluation centre", "评估评价机构"),
    ("advisory", "Advisory firm", "咨询服务机构"),
    ("testing_lab", "Testing and certification lab", "检验检测认证机构"),
    ("instrument_sharing", "R&D instrument-sharing centre", "科研仪器共享中心"),
    ("tech_transfer", "Technology-transfer agency", "技术转移机构"),
]

REGIONS = [
    ("suzhou", "Suzhou", "苏州"),
    ("suzhou_sip", "Suzhou Industrial Park", "苏州工业园区"),
    ("suzhou_snd", "Suzhou New District", "苏州高新区"),
    ("kunshan", "Kunshan", "昆山"),
    ("changshu", "Changshu", "常熟"),
    ("zhangjiagang", "Zhangjiagang", "张家港"),
    ("taicang", "Taicang", "太仓"),
    ("wuxi", "Wuxi", "无锡"),
    ("changzhou", "Changzhou", "常州"),
    ("nanjing", "Nanjing", "南京"),
    ("shanghai", "Shanghai", "上海"),
    ("jiangsu", "Jiangsu (province-wide)", "江苏全省"),
    ("national", "Nationwide", "全国"),
]

INDUSTRIES = [
    ("electronics", "Electronics and semiconductors", "电子信息与半导体"),
    ("biomedicine", "Biomedicine", "生物医药"),
    ("advanced_manufacturing", "Advanced manufacturing", "高端装备制造"),
    ("new_materials", "New materials", "新材料"),
    ("new_energy", "New energy and environment", "新能源与节能环保"),
    ("software", "Software and internet", "软件与互联网"),
    ("ai", "Artificial intelligence", "人工智能"),
    ("automotive", "Automotive and parts", "汽车及零部件"),
    ("chemicals", "Fine chemicals", "精细化工"),
    ("textiles", "Textiles", "纺织服装"),
    ("food", "Food and agriculture", "食品与农业"),
    ("services", "Modern services", "现代服务业"),
]

COMPANY_SIZES = [
    ("micro", "Micro (fewer than 10 staff)", "微型"),
    ("small", "Small (10–99 staff)", "小型"),
    ("medium", "Medium (100–999 staff)", "中型"),
    ("large", "Large (1,000+ staff)", "大型"),
]


def _labels(rows):
    return {code: en for code, en, _zh in rows}


INSTITUTION_TYPE_LABELS = _labels(INSTITUTION_TYPES)
REGION_LABELS = _labels(REGIONS)
INDUSTRY_LABELS = _labels(INDUSTRIES)
COMPANY_SIZE_LABELS = _labels(COMPANY_SIZES)
REGION_LABELS_ZH = {code: zh for code, _en, zh in REGIONS}
INSTITUTION_TYPE_LABELS_ZH = {code: zh for code, _en, zh in INSTITUTION_TYPES}


def choices(rows):
    """WTForms choices showing both languages."""
    return [(code, f"{en} · {zh}") for code, en, zh in rows]

"""Vocabulary and text tables for the demo supermarket (marketplace/demo/catalogue.py).

Everything here is fixed data: names, places, service templates, deliverables and prose in
English and Chinese. The loader combines them with a seeded random generator, so the same
seed always produces the same supermarket.

Title templates use ``{f}`` (a focus: an industry, product family or instrument), ``{brand}``
(the institution's short brand) and ``{amt}`` (the largest amount of a financial product).
Prose may use ``{f}``, ``{days}`` and ``{clients}``.
"""

from dataclasses import dataclass

# --- places --------------------------------------------------------------------------------
# (English, Chinese, region code, administrative division for credit codes, phone area code)
PLACES = {
    "suzhou": ("Suzhou", "苏州", "320500", "0512"),
    "suzhou_sip": ("Suzhou Industrial Park", "苏州工业园区", "320571", "0512"),
    "suzhou_snd": ("Suzhou New District", "苏州高新区", "320505", "0512"),
    "kunshan": ("Kunshan", "昆山", "320583", "0512"),
    "changshu": ("Changshu", "常熟", "320581", "0512"),
    "zhangjiagang": ("Zhangjiagang", "张家港", "320582", "0512"),
    "taicang": ("Taicang", "太仓", "320585", "0512"),
    "wuxi": ("Wuxi", "无锡", "320200", "0510"),
    "changzhou": ("Changzhou", "常州", "320400", "0519"),
    "nanjing": ("Nanjing", "南京", "320100", "025"),
    "shanghai": ("Shanghai", "上海", "310115", "021"),
}
# Where institutions and enterprises are based (weights: the supermarket is in Suzhou).
HOME_REGION_WEIGHTS = {
    "suzhou": 22, "suzhou_sip": 20, "suzhou_snd": 12, "kunshan": 9, "changshu": 5,
    "zhangjiagang": 4, "taicang": 4, "wuxi": 8, "changzhou": 5, "nanjing": 6, "shanghai": 5,
}
# Company names use the city, not the development zone.
NAME_PLACE = {"suzhou_sip": "suzhou", "suzhou_snd": "suzhou"}

# --- people --------------------------------------------------------------------------------
SURNAMES = [
    ("Zhang", "张"), ("Wang", "王"), ("Li", "李"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
    ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴"), ("Xu", "徐"), ("Sun", "孙"),
    ("Zhu", "朱"), ("Ma", "马"), ("Hu", "胡"), ("Guo", "郭"), ("Lin", "林"), ("He", "何"),
    ("Gao", "高"), ("Shen", "沈"), ("Gu", "顾"), ("Lu", "陆"), ("Jiang", "蒋"), ("Qian", "钱"),
    ("Cao", "曹"), ("Tang", "唐"), ("Feng", "冯"), ("Xie", "谢"), ("Song", "宋"), ("Pan", "潘"),
]
GIVEN_NAMES = [
    ("Wei", "伟"), ("Fang", "芳"), ("Min", "敏"), ("Jing", "静"), ("Lei", "磊"), ("Qiang", "强"),
    ("Yang", "洋"), ("Yan", "艳"), ("Jun", "军"), ("Tao", "涛"), ("Jie", "杰"), ("Ping", "平"),
    ("Hui", "慧"), ("Ying", "颖"), ("Xiaoming", "晓明"), ("Jianhua", "建华"), ("Haiyan", "海燕"),
    ("Zhiqiang", "志强"), ("Lihua", "丽华"), ("Yufei", "宇飞"), ("Chenxi", "晨曦"),
    ("Zihan", "子涵"), ("Haoran", "浩然"), ("Yiming", "一鸣"), ("Xinyi", "欣怡"), ("Jiayi", "佳怡"),
    ("Junjie", "俊杰"), ("Wenjing", "文静"), ("Kai", "凯"), ("Bin", "斌"), ("Ling", "玲"),
    ("Rui", "睿"), ("Yuting", "雨婷"), ("Zhiwei", "志伟"), ("Guoqiang", "国强"), ("Xue", "雪"),
    ("Peng", "鹏"), ("Fei", "飞"), ("Mengyao", "梦瑶"), ("Shuo", "硕"),
]

# --- brand syllables -----------------------------------------------------------------------
# Two syllables make a brand: Yuan + he -> "Yuanhe" 元和.
INSTITUTION_SYLLABLES = [
    ("Yuan", "元"), ("Hua", "华"), ("Xin", "信"), ("Rui", "瑞"), ("Tai", "泰"), ("Heng", "恒"),
    ("Jin", "金"), ("Bo", "博"), ("Tian", "天"), ("Ding", "鼎"), ("Sheng", "盛"), ("Zhi", "智"),
    ("Hao", "浩"), ("Ming", "明"), ("Jun", "骏"), ("Qi", "启"), ("Hong", "宏"), ("Jia", "嘉"),
    ("Cheng", "诚"), ("Wan", "万"), ("Kai", "开"), ("Tong", "通"), ("Lian", "联"), ("Hui", "汇"),
    ("Jing", "精"), ("Xing", "星"), ("De", "德"), ("Guang", "光"), ("Yong", "永"), ("Run", "润"),
    ("Ke", "科"), ("Da", "达"), ("Feng", "丰"), ("Zheng", "正"), ("Chang", "昌"), ("Yi", "义"),
    ("He", "和"), ("Ze", "泽"), ("An", "安"), ("Tuo", "拓"),
]
ENTERPRISE_SYLLABLES = [
    ("Na", "纳"), ("Wei", "微"), ("Rui", "睿"), ("Xin", "芯"), ("Hua", "华"), ("Chuang", "创"),
    ("Yuan", "元"), ("Tai", "泰"), ("Heng", "恒"), ("Sheng", "晟"), ("Bo", "博"), ("Zhi", "智"),
    ("Jing", "精"), ("Ke", "科"), ("Xun", "迅"), ("Kai", "凯"), ("Long", "隆"), ("Feng", "丰"),
    ("Yu", "宇"), ("Hao", "昊"), ("Tian", "天"), ("Ming", "明"), ("Guang", "光"), ("Da", "达"),
    ("Cheng", "诚"), ("Lian", "联"), ("Tong", "通"), ("Jia", "嘉"), ("Run", "润"), ("Ze", "泽"),
    ("Qi", "启"), ("Hong", "鸿"), ("Yi", "亿"), ("Wan", "万"), ("Jin", "锦"), ("Lan", "蓝"),
    ("Xing", "星"), ("Chen", "辰"), ("Yao", "耀"), ("Shuo", "硕"), ("Ao", "奥"), ("Wo", "沃"),
    ("Ge", "格"), ("Mai", "迈"), ("Kang", "康"), ("Pu", "普"), ("Lin", "麟"), ("Fan", "帆"),
    ("Yun", "云"), ("Hai", "海"), ("Xiang", "翔"), ("Ding", "鼎"), ("Ji", "吉"), ("An", "安"),
    ("Fu", "福"), ("Tuo", "拓"), ("Shi", "势"), ("Neng", "能"),
]

# --- enterprises ---------------------------------------------------------------------------
# Business words per industry: (English, Chinese, slug).
ENTERPRISE_FIELDS = {
    "electronics": [("Optoelectronics", "光电科技", "opto"), ("Semiconductor", "半导体", "semi"),
                    ("Electronic Technology", "电子科技", "elec"), ("Microelectronics", "微电子", "micro")],
    "biomedicine": [("Biopharma", "生物医药", "bio"), ("Medical Technology", "医疗科技", "med"),
                    ("Biotechnology", "生物科技", "biotech"), ("Pharmaceutical", "制药", "pharma")],
    "advanced_manufacturing": [("Intelligent Equipment", "智能装备", "equip"),
                               ("Precision Machinery", "精密机械", "precision"),
                               ("Robotics", "机器人", "robotics"), ("Automation", "自动化科技", "auto")],
    "new_materials": [("New Materials", "新材料", "materials"),
                      ("Advanced Materials", "先进材料科技", "amat"),
                      ("Nanotechnology", "纳米科技", "nano"), ("Polymer Materials", "高分子材料", "polymer")],
    "new_energy": [("New Energy", "新能源科技", "energy"), ("Energy Storage", "储能科技", "storage"),
                   ("Environmental Technology", "环保科技", "env"), ("Photovoltaic", "光伏科技", "pv")],
    "software": [("Software", "软件", "soft"), ("Information Technology", "信息技术", "it"),
                 ("Network Technology", "网络科技", "net"), ("Data Technology", "数据科技", "data")],
    "ai": [("Intelligent Technology", "智能科技", "intelligent"), ("AI Technology", "人工智能科技", "ai"),
           ("Vision Technology", "视觉科技", "vision")],
    "automotive": [("Auto Parts", "汽车零部件", "autoparts"),
                   ("Automotive Electronics", "汽车电子", "autoelec"),
                   ("Powertrain Technology", "动力科技", "power")],
    "chemicals": [("Chemical", "化工", "chem"), ("Fine Chemicals", "精细化工", "finechem"),
                  ("Coatings Technology", "涂料科技", "coatings")],
    "textiles": [("Textile", "纺织", "textile"), ("Functional Fabrics", "功能面料", "fabric"),
                 ("Fibre Technology", "纤维科技", "fibre")],
    "food": [("Food Technology", "食品科技", "food"), ("Agricultural Technology", "农业科技", "agri"),
             ("Bio-Agriculture", "生物农业", "bioagri")],
    "services": [("Technology Services", "科技服务", "techserv"),
                 ("Information Consulting", "信息咨询", "info"),
                 ("Supply Chain Management", "供应链管理", "supply")],
}
INDUSTRY_WEIGHTS = {
    "electronics": 16, "biomedicine": 11, "advanced_manufacturing": 15, "new_materials": 10,
    "new_energy": 9, "software": 12, "ai": 8, "automotive": 7, "chemicals": 5, "textiles": 3,
    "food": 2, "services": 2,
}
SIZE_WEIGHTS = {"micro": 25, "small": 45, "medium": 25, "large": 5}

# --- service institutions ------------------------------------------------------------------
INSTITUTION_COUNTS = {
    "bank": 20, "venture_capital": 14, "guarantee": 10, "insurance": 8, "ip_agency": 25,
    "evaluation_centre": 12, "advisory": 21, "testing_lab": 18, "instrument_sharing": 10,
    "tech_transfer": 12,
}
# Fictional parent banks and insurers; their branches carry the institution's name.
# (English, Chinese, domain, short brand English, short brand Chinese)
BANK_PARENTS = [
    ("Jiangnan Sci-Tech Bank", "江南科技银行", "jnstbank", "Jiangnan", "江南"),
    ("Gusu Commercial Bank", "姑苏商业银行", "gusubank", "Gusu", "姑苏"),
    ("Taihu Rural Commercial Bank", "太湖农村商业银行", "taihurcb", "Taihu", "太湖"),
    ("Wuyue Bank", "吴越银行", "wuyuebank", "Wuyue", "吴越"),
    ("Yangtze Delta Development Bank", "长三角发展银行", "ydbank", "Delta", "长三角"),
    ("Huatong Bank", "华通银行", "huatongbank", "Huatong", "华通"),
    ("Xinhe Bank", "信和银行", "xinhebank", "Xinhe", "信和"),
    ("Dongwu Commercial Bank", "东吴商业银行", "dongwubank", "Dongwu", "东吴"),
]
INSURERS = [
    ("Jiangnan Property & Casualty Insurance", "江南财产保险", "jnpc", "Jiangnan", "江南"),
    ("Anheng Property Insurance", "安恒财产保险", "anheng-ins", "Anheng", "安恒"),
    ("Xinbao Property Insurance", "信保财产保险", "xinbao-ins", "Xinbao", "信保"),
    ("Ruian Property Insurance", "瑞安财产保险", "ruian-ins", "Ruian", "瑞安"),
    ("Kechuang Mutual Insurance", "科创相互保险", "kcmutual", "Kechuang", "科创"),
]
# Name patterns per type: (English, Chinese, domain suffix). {place}/{brand} are filled in.
INSTITUTION_NAME_PATTERNS = {
    "venture_capital": [
        ("{place} {brand} Venture Capital Co., Ltd.", "{place}{brand}创业投资有限公司", "vc"),
        ("{brand} Capital Management (Limited Partnership)", "{brand}资本管理合伙企业（有限合伙）", "capital"),
        ("{place} {brand} Angel Investment Fund", "{place}{brand}天使投资基金", "angel"),
    ],
    "guarantee": [
        ("{place} {brand} Financing Guarantee Co., Ltd.", "{place}{brand}融资担保有限公司", "guarantee"),
        ("{place} {brand} Sci-Tech Guarantee Co., Ltd.", "{place}{brand}科技融资担保有限公司", "stguarantee"),
    ],
    "ip_agency": [
        ("{place} {brand} Patent Agency Co., Ltd.", "{place}{brand}专利代理有限公司", "ip"),
        ("{brand} IP Attorneys (General Partnership)", "{brand}知识产权代理事务所（普通合伙）", "ipattorneys"),
        ("{place} {brand} Intellectual Property Services Co., Ltd.", "{place}{brand}知识产权服务有限公司", "ipservices"),
    ],
    "evaluation_centre": [
        ("{place} {brand} Asset Appraisal Co., Ltd.", "{place}{brand}资产评估有限公司", "appraisal"),
        ("{place} {brand} Science & Technology Evaluation Centre", "{place}{brand}科技评估中心", "evaluation"),
    ],
    "advisory": [
        ("{place} {brand} Management Consulting Co., Ltd.", "{place}{brand}企业管理咨询有限公司", "consulting"),
        ("{brand} Law Firm", "{brand}律师事务所", "law"),
        ("{place} {brand} Technology Consulting Co., Ltd.", "{place}{brand}科技咨询有限公司", "techconsult"),
    ],
    "testing_lab": [
        ("{place} {brand} Testing Technology Co., Ltd.", "{place}{brand}检测技术有限公司", "testing"),
        ("{brand} Inspection & Certification ({place}) Co., Ltd.", "{brand}检验认证（{place}）有限公司", "cert"),
        ("{place} {brand} Metrology & Calibration Co., Ltd.", "{place}{brand}计量校准有限公司", "metrology"),
    ],
    "instrument_sharing": [
        ("{place} {brand} Large Instrument Sharing Centre", "{place}{brand}大型科学仪器共享服务中心", "instruments"),
        ("{brand} Materials Analysis and Testing Platform", "{brand}材料分析测试平台", "analysis"),
        ("{place} {brand} Pilot-Scale Service Platform", "{place}{brand}中试服务平台", "pilot"),
    ],
    "tech_transfer": [
        ("{place} {brand} Technology Transfer Centre Co., Ltd.", "{place}{brand}技术转移中心有限公司", "techtransfer"),
        ("{brand} Technology Market Services Co., Ltd.", "{brand}技术市场服务有限公司", "techmarket"),
    ],
}
BANK_NAME = ("{parent} {place} Sci-Tech Sub-branch", "{parent_zh}{place_zh}科技支行")
INSURER_NAME = ("{parent} Co., Ltd. {place} Branch", "{parent_zh}股份有限公司{place_zh}分公司")

# The provider@demo.example login owns this agency.
DEMO_PROVIDER = {
    "name_en": "Suzhou Yuanhe Patent Agency Co., Ltd.", "name_zh": "苏州元和专利代理有限公司",
    "brand_en": "Yuanhe", "brand_zh": "元和", "region": "suzhou", "domain": "yuanhe-ip",
}
DEMO_ENTERPRISE = {
    "name": "Suzhou Demo Robotics Co., Ltd. 苏州演示机器人有限公司", "region": "suzhou_sip",
    "industry": "advanced_manufacturing", "size": "small", "contact": ("Chen", "陈", "Jing", "静"),
}

FOUNDED = {
    "bank": (1996, 2016), "venture_capital": (2005, 2020), "guarantee": (2003, 2018),
    "insurance": (2000, 2015), "ip_agency": (1998, 2021), "evaluation_centre": (1999, 2018),
    "advisory": (2004, 2022), "testing_lab": (2001, 2020), "instrument_sharing": (2008, 2021),
    "tech_transfer": (2006, 2022),
}

# Institution profiles: an English and a Chinese introduction and strengths (English, Chinese).
# Intros may use {name_en} {name_zh} {place_en} {place_zh} {staff} {clients} {year}
# {f1_en} {f2_en} {f1_zh} {f2_zh}.
INSTITUTION_PROFILES = {
    "bank": (
        "{name_en} is a dedicated technology-finance branch in {place_en}. Its {staff} sci-tech "
        "account managers lend to science and technology SMEs against patents, orders and tax "
        "records, working with the municipal risk-compensation fund so that asset-light "
        "companies can borrow without property collateral.",
        "{name_zh}是专门服务科技型企业的特色支行，现有科技金融客户经理{staff}名，依托地方风险补偿资金池，"
        "为轻资产、有专利的科技型中小企业提供信用贷款、知识产权质押融资和投贷联动服务，累计服务企业{clients}余家。",
        [("Decisions on applications within five working days", "申请五个工作日内给出审批意见"),
         ("Loans backed by patents, orders and tax records instead of property", "以专利、订单和纳税记录替代房产抵押"),
         ("Interest subsidies and risk-compensation schemes applied for you", "协助申请贴息及风险补偿"),
         ("Investment-loan linkage with partner venture funds", "与合作创投基金开展投贷联动"),
         ("A dedicated sci-tech account manager for every client", "每位客户配备专属科技金融客户经理")],
    ),
    "venture_capital": (
        "{name_en} invests in early-stage {f1_en} and {f2_en} companies, from angel rounds to "
        "Series B. Founded in {year}, the team has backed {clients} companies in the Yangtze River "
        "Delta and co-invests with municipal and provincial guidance funds.",
        "{name_zh}成立于{year}年，专注{f1_zh}、{f2_zh}等领域的早期投资，覆盖天使轮至B轮，已投资长三角地区企业{clients}家，"
        "并与省市政府引导基金开展联合投资。",
        [("Patient capital with fund terms of seven to ten years", "基金存续期7–10年，坚持长期投资"),
         ("Co-investment with government guidance funds", "与政府引导基金联合投资"),
         ("Hands-on support after investment: hiring, finance and follow-on rounds", "深度投后赋能：招聘、财务与后续融资"),
         ("Introductions to customers among listed companies", "上市公司资源网络助力客户拓展"),
         ("Decisions in weeks, not months", "决策周期以周计而非以月计")],
    ),
    "guarantee": (
        "{name_en} is a policy-backed financing guarantee company in {place_en}. We guarantee bank "
        "loans, IP-pledge financing and procurement contracts for technology SMEs, with guarantee "
        "fees subsidised under the provincial scheme. More than {clients} companies have borrowed "
        "with our guarantee since {year}.",
        "{name_zh}是{place_zh}政策性融资担保机构，为科技型中小企业提供银行贷款担保、知识产权质押融资担保及政府采购合同履约担保，"
        "担保费享受省级降费补贴。自{year}年成立以来已为{clients}余家企业提供担保。",
        [("Guarantee fees from 1% a year with the provincial subsidy", "担保费率低至1%/年并享省级补贴"),
         ("Partnerships with more than 20 banks", "与20余家银行建立合作"),
         ("Counter-guarantee by equity pledge or receivables", "可接受股权质押、应收账款反担保"),
         ("Electronic letters of guarantee issued within a day", "电子保函当日出函"),
         ("Renewals without repeating paperwork", "续保免重复提交材料")],
    ),
    "insurance": (
        "{name_en} runs the technology-insurance programme of its group in {place_en}: R&D expense "
        "loss, first-of-a-kind equipment, new-materials first-batch and patent-enforcement cover. "
        "Premiums qualify for the municipal sci-tech insurance subsidy.",
        "{name_zh}负责集团在{place_zh}的科技保险业务，提供研发费用损失险、首台（套）重大技术装备保险、新材料首批次应用保险和专利执行保险等产品，"
        "保费可申请市级科技保险补贴。",
        [("Policies designed with the municipal science and technology bureau", "与市科技局联合设计保险产品"),
         ("Premium subsidies of up to 50%", "保费补贴最高50%"),
         ("Engineers on the claims team", "理赔团队配备工程师"),
         ("Claims settled within 30 days", "30天内完成理赔"),
         ("Online policies and e-invoices", "电子保单与电子发票")],
    ),
    "ip_agency": (
        "{name_en} is a patent and trademark agency with {staff} registered patent attorneys whose "
        "backgrounds cover {f1_en}, {f2_en} and other technologies. Since {year} we have filed thousands of "
        "applications for SMEs, universities and research institutes, and handled enforcement "
        "cases in courts across China.",
        "{name_zh}是经国家知识产权局批准设立的专利商标代理机构，现有专利代理师{staff}名，技术背景覆盖{f1_zh}、{f2_zh}等领域。"
        "自{year}年起累计为{clients}余家企业、高校和科研院所提供知识产权服务。",
        [("Patent attorneys with engineering degrees and industry experience", "专利代理师均具理工科背景及行业经验"),
         ("A published grant rate above the national average", "授权率高于全国平均水平"),
         ("Fixed fees, with official fees shown separately", "代理费固定、官费单列"),
         ("Deadline tracking with automatic reminders", "期限管理系统自动提醒"),
         ("An English-speaking team for PCT and foreign filings", "英语团队办理PCT及海外申请")],
    ),
    "evaluation_centre": (
        "{name_en} is an independent evaluation body for scientific achievements, intellectual "
        "property value and technology readiness. Its reports are accepted by banks, courts and "
        "award committees, and its expert pool counts more than 3,000 reviewers.",
        "{name_zh}是独立第三方评估评价机构，开展科技成果评价、知识产权价值评估、高新技术企业认定辅导和技术成熟度评价，"
        "拥有资产评估师及高级工程师{staff}名，专家库3000余人。",
        [("An expert pool of more than 3,000 reviewers", "专家库3000余人"),
         ("Reports accepted by banks, courts and award committees", "报告获银行、法院及奖励评审认可"),
         ("Certified asset appraisers and senior engineers", "持证资产评估师与高级工程师团队"),
         ("Fixed fees agreed before work starts", "开工前确定固定费用"),
         ("Expedited service when your deadline is close", "可提供加急服务")],
    ),
    "advisory": (
        "{name_en} helps technology companies in {place_en} win policy support, build management "
        "systems and get sound legal and technical advice. Our {staff} consultants include former "
        "science-bureau officials, lawyers and engineers.",
        "{name_zh}为{place_zh}及周边科技企业提供政策申报、管理咨询、法律及技术咨询服务，"
        "顾问团队{staff}人，成员包括科技主管部门前工作人员、律师和工程师，已服务企业{clients}余家。",
        [("Consultants who have worked in science and technology bureaus", "顾问具有科技主管部门工作经历"),
         ("Success-based fees on many programmes", "多类项目按成功收费"),
         ("Policy alerts tailored to your company", "定制化政策推送"),
         ("Lawyers and engineers in one team", "律师与工程师组成联合团队"),
         ("Hundreds of successful applications every year", "每年成功申报项目数百项")],
    ),
    "testing_lab": (
        "{name_en} is a third-party testing and certification laboratory with CMA and CNAS "
        "accreditation. Its laboratories in {place_en} test {f1_en} and {f2_en} products to GB, "
        "IEC and EN standards, and reports are recognised by certification bodies worldwide.",
        "{name_zh}是具备CMA、CNAS资质的第三方检验检测认证机构，实验室位于{place_zh}，"
        "可依据GB、IEC、EN等标准为{f1_zh}、{f2_zh}等行业提供检测、认证和校准服务，年出具报告逾万份。",
        [("CMA and CNAS accredited", "具备CMA与CNAS资质"),
         ("Reports in Chinese and English", "中英文双语报告"),
         ("Expedited testing in three working days", "三个工作日加急检测"),
         ("Engineers who help you fix failures", "工程师协助整改不合格项"),
         ("Recognised by international certification bodies", "获国际认证机构认可")],
    ),
    "instrument_sharing": (
        "{name_en} opens large scientific instruments and laboratory space to companies and "
        "universities. Certified operators run electron microscopes, spectrometers and pilot "
        "lines for SMEs at subsidised rates, and innovation vouchers are accepted.",
        "{name_zh}是区域科研仪器开放共享平台，面向企业和高校开放大型科学仪器、实验室及中试设施，"
        "由持证工程师操作，中小企业享受优惠价格，可使用科技创新券。",
        [("Large instruments open to any company", "大型仪器向所有企业开放"),
         ("Innovation vouchers accepted", "可使用科技创新券"),
         ("Certified operators and application scientists", "持证操作员及应用科学家"),
         ("Online booking with real-time availability", "在线预约、实时查看机时"),
         ("Subsidised rates for SMEs", "中小企业享受优惠价格")],
    ),
    "tech_transfer": (
        "{name_en} connects companies with universities and research institutes across the "
        "Yangtze River Delta. Our {staff} certified technology managers find technologies, broker "
        "licences and register technology contracts so that both sides get the tax benefits.",
        "{name_zh}是专业技术转移服务机构，链接长三角200余家高校院所，现有持证技术经理人{staff}名，"
        "提供成果对接、技术许可经纪和技术合同认定登记服务，累计促成转化项目{clients}余项。",
        [("A network of 200+ universities and institutes", "对接200余家高校院所"),
         ("Certified technology managers", "持证技术经理人团队"),
         ("Technology contract registration on site", "可现场办理技术合同登记"),
         ("Success-based brokerage fees", "经纪服务按成交收费"),
         ("Roadshows and matchmaking events every month", "每月举办路演及对接活动")],
    ),
}
SUSPENSION_REASON = (
    "Suspended by platform staff on 2026-10-12 after repeated complaints about late and "
    "inconsistent test reports; listings are hidden while the case is reviewed. "
    "因多次投诉检测报告延期且数据不一致，平台暂停其展示，正在复核。"
)

# --- focus lists ---------------------------------------------------------------------------
FIELDS = [
    ("consumer electronics", "消费电子"), ("semiconductor", "半导体"), ("biopharma", "生物医药"),
    ("medical device", "医疗器械"), ("new materials", "新材料"), ("new energy", "新能源"),
    ("smart manufacturing", "智能制造"), ("software and AI", "软件与人工智能"),
    ("automotive parts", "汽车零部件"), ("fine chemicals", "精细化工"), ("photonics", "光电"),
    ("robotics", "机器人"),
]
PRODUCT_FAMILIES = [
    ("consumer electronics", "消费电子产品"), ("medical devices", "医疗器械"),
    ("automotive electronics", "汽车电子"), ("industrial equipment", "工业设备"),
    ("lithium batteries", "锂电池"), ("LED lighting", "LED照明产品"),
    ("household appliances", "家用电器"), ("IoT modules", "物联网模组"), ("textiles", "纺织品"),
    ("food-contact materials", "食品接触材料"), ("plastics and polymers", "塑料及高分子材料"),
    ("metal components", "金属零部件"),
]
INSTRUMENTS = [
    ("Field-emission SEM", "场发射扫描电镜"), ("Transmission electron microscope", "透射电子显微镜"),
    ("X-ray diffractometer", "X射线衍射仪"), ("600 MHz NMR spectrometer", "600兆核磁共振波谱仪"),
    ("LC-MS/MS", "液质联用仪"), ("ICP-MS", "电感耦合等离子体质谱仪"),
    ("Confocal laser microscope", "激光共聚焦显微镜"), ("Micro-CT scanner", "显微CT"),
    ("XPS surface analyser", "X射线光电子能谱仪"), ("Atomic force microscope", "原子力显微镜"),
    ("Flow cytometer", "流式细胞仪"), ("DSC/TGA thermal analyser", "热分析仪（DSC/TGA）"),
]
GAUGES = [
    ("pressure gauges", "压力表"), ("thermometers and thermocouples", "温度计与热电偶"),
    ("electrical meters", "电学仪表"), ("torque tools", "扭矩工具"),
    ("coordinate measuring machines", "三坐标测量机"), ("balances and weights", "天平与砝码"),
    ("oscilloscopes", "示波器"), ("flow meters", "流量计"), ("gauge blocks and callipers", "量块与卡尺"),
]

# --- process steps per top-level category --------------------------------------------------
STEPS = {
    "finance": [
        ("Submit the online application with basic company information", "在线提交申请及企业基本信息"),
        ("Upload financial statements, tax records and IP certificates", "上传财务报表、纳税记录及知识产权证书"),
        ("Account manager visit and due diligence", "客户经理走访及尽职调查"),
        ("Credit approval and contract signing", "审批授信并签订合同"),
        ("Disbursement to your company account", "放款至企业账户"),
    ],
    "investment": [
        ("Send your business plan through the platform", "通过平台提交商业计划书"),
        ("First meeting with the investment team", "与投资团队首次会谈"),
        ("Due diligence on technology, market and finances", "技术、市场与财务尽职调查"),
        ("Term sheet and investment committee decision", "投资意向书及投委会决策"),
        ("Closing and post-investment support", "完成交割并开展投后服务"),
    ],
    "insurance": [
        ("Complete the online risk questionnaire", "在线填写风险问卷"),
        ("Underwriting assessment, with a site survey if needed", "核保评估，必要时现场查勘"),
        ("Quotation and subsidy check", "报价并核对可享补贴"),
        ("Policy issued electronically", "出具电子保单"),
        ("Claims handled by the technology-risk team", "科技风险团队负责理赔"),
    ],
    "ip": [
        ("Free consultation to confirm your needs", "免费咨询确认需求"),
        ("Search and feasibility analysis", "检索与可行性分析"),
        ("Drafting and review with you", "撰写文件并由您确认"),
        ("Filing with CNIPA and official-fee payment", "向国家知识产权局递交并缴纳官费"),
        ("Tracking until grant or final decision", "全程跟踪直至授权或结案"),
    ],
    "analysis": [
        ("Agree the question and scope with your team", "与团队确认问题与范围"),
        ("Search strategy and database selection", "制定检索策略并选择数据库"),
        ("Searching, screening and reading the closest documents", "检索、筛选并研读最相关文献"),
        ("Draft report for your comments", "出具报告初稿征求意见"),
        ("Final report and briefing call", "提交正式报告并电话解读"),
    ],
    "litigation": [
        ("Case assessment and strategy", "案情评估与策略制定"),
        ("Evidence collection and notarisation", "证据收集与公证"),
        ("Warning letter or administrative complaint", "发送律师函或提起行政投诉"),
        ("Litigation or invalidation proceedings", "提起诉讼或无效程序"),
        ("Settlement, judgment and enforcement", "和解、判决与执行"),
    ],
    "evaluation": [
        ("Confirm scope and fixed fee", "确认评价范围与费用"),
        ("Submit documents and data", "提交资料和数据"),
        ("Expert review, on site or online", "专家现场或线上评审"),
        ("Draft report for your comments", "出具初稿征求意见"),
        ("Final sealed report", "出具盖章正式报告"),
    ],
    "advisory": [
        ("Discovery call", "需求沟通"),
        ("Diagnosis and data review", "诊断调研与资料梳理"),
        ("Proposal with scope and milestones", "提交方案并确定范围和里程碑"),
        ("Implementation support", "落地实施辅导"),
        ("Follow-up review", "后续回访复盘"),
    ],
    "inspection": [
        ("Submit the test request and samples", "提交委托单及样品"),
        ("Contract review and test plan", "合同评审与检测方案确认"),
        ("Testing in the accredited laboratory", "在认可实验室进行检测"),
        ("Report issued with CMA/CNAS marks", "出具带CMA/CNAS标识的报告"),
        ("Rectification advice if anything fails", "不合格项整改建议"),
    ],
    "rd-sharing": [
        ("Book online and confirm the slot", "在线预约并确认时段"),
        ("Safety induction and sample preparation", "安全培训与样品准备"),
        ("Work carried out by certified staff", "由持证人员操作"),
        ("Data and records delivered", "交付数据及记录"),
        ("Optional analysis and interpretation", "可选数据分析与解读"),
    ],
    "tech-transfer": [
        ("Needs interview", "需求访谈"),
        ("Search of university and institute results", "检索高校院所成果"),
        ("Shortlist and matchmaking meetings", "筛选并组织对接会"),
        ("Negotiation and contract", "谈判与签约"),
        ("Contract registration and follow-up", "合同登记与后续跟踪"),
    ],
}


# --- service templates per sub-category ----------------------------------------------------
@dataclass(frozen=True)
class Template:
    zh: str
    en: str
    modes: str = "p"  # p packaged, q quote, f financial; several letters = pick one
    price: tuple[int, int] | None = None  # yuan, overrides the sub-category range
    only: tuple[str, ...] | None = None  # institution types that offer this service
    terms: dict | None = None  # financial terms, overrides the sub-category terms


@dataclass(frozen=True)
class SubCategory:
    count: int  # products to create
    types: tuple[str, ...]  # institution types that fit, most fitting first
    templates: tuple[Template, ...]
    deliverables: tuple[tuple[str, str], ...]  # also the highlights of financial products
    audience: tuple[tuple[str, str], ...]
    pitches: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    price: tuple[int, int] = (1000, 10000)  # yuan, range of package prices
    days: tuple[int, int] = (5, 30)
    steps: str = ""  # key of STEPS; defaults to the top-level category
    focus: tuple[tuple[str, str], ...] = tuple(FIELDS)
    quote_brief: tuple[str, str] | None = None
    terms: dict | None = None


T = Template

LOAN_LABELS = {"amount_label": ("Loan amount", "贷款额度"), "rate_label": ("Annual interest rate", "年利率")}
GUARANTEE_LABELS = {"amount_label": ("Guaranteed amount", "担保金额"), "rate_label": ("Annual guarantee fee", "年担保费率")}
GUARANTEE_TERMS = {
    "amin": (500_000, 1_000_000, 2_000_000), "amax": (5_000_000, 10_000_000, 20_000_000),
    "rate": (80, 120, 30, 100), "tmin": (6, 12), "tmax": (12, 24, 36), "fee": (0, 0, 1000, 2000),
    **GUARANTEE_LABELS,
}

SUBCATEGORIES: dict[str, SubCategory] = {
    # ---------------------------------------------------------------- S&T finance
    "credit-loans": SubCategory(
        count=20, types=("bank",), days=(3, 15), steps="finance",
        templates=(
            T("科技型中小企业信用贷（最高{amt}）", "Sci-tech SME credit loan up to {amt}", "f"),
            T("{brand}科创贷（无需抵押）", "{brand} Sci-Tech Loan, no collateral required", "f"),
            T("高新技术企业专属信用贷", "Credit loan for certified high-tech enterprises", "f"),
            T("人才贷（领军人才创业企业专属）", "Talent loan for start-ups led by recognised talent", "f"),
            T("研发贷（按研发投入核定额度）", "R&D loan sized to your R&D spending", "f"),
            T("银税贷（凭纳税信用审批）", "Tax-credit loan approved on your tax record", "f"),
            T("{f}企业订单融资", "Order financing for {f} manufacturers", "f"),
            T("专精特新企业成长贷", "Growth loan for specialised and sophisticated SMEs", "f"),
            T("{f}科技企业流动资金贷款", "Working-capital loan for {f} companies", "f"),
            T("首贷户专享科技信用贷", "First-time borrower credit loan for tech SMEs", "f"),
        ),
        deliverables=(
            ("No property collateral required", "无需抵押担保"),
            ("Revolving credit line: draw and repay any time", "额度循环使用，随借随还"),
            ("Interest subsidy under the municipal sci-tech loan programme", "可享受市级科技贷款贴息"),
            ("A dedicated sci-tech account manager", "专属科技金融客户经理"),
            ("Online drawdown through corporate banking", "企业网银线上提款"),
            ("Covered by the municipal risk-compensation pool", "纳入风险补偿资金池"),
        ),
        audience=(
            ("Technology SMEs registered in the region for at least one year", "在本地注册满一年的科技型中小企业"),
            ("Certified high-tech enterprises and companies in the sci-tech SME database", "高新技术企业及入库科技型中小企业"),
            ("Companies with granted invention patents or software copyrights", "拥有发明专利或软件著作权的企业"),
            ("Annual revenue between ¥2M and ¥200M", "年营业收入200万元至2亿元"),
        ),
        pitches=(
            ("Unsecured working capital for technology SMEs, priced on your IP and R&D record rather than property collateral.",
             "面向科技型中小企业的纯信用流动资金贷款，以知识产权和研发投入为核心授信依据，无需房产抵押。"),
            ("Apply online and get a decision within {days} working days; the line revolves so you borrow only when you need it.",
             "线上申请，{days}个工作日内出审批结果，额度可循环使用、随借随还。"),
        ),
        tags=("信用贷", "credit loan", "科技贷", "no collateral", "贴息", "working capital"),
        terms={"amin": (300_000, 500_000, 1_000_000), "amax": (3_000_000, 5_000_000, 8_000_000, 10_000_000),
               "rate": (330, 420, 80, 260), "tmin": (3, 6, 12), "tmax": (12, 24, 36), "fee": (0,),
               **LOAN_LABELS},
    ),
    "ip-pledge": SubCategory(
        count=16, types=("bank", "guarantee"), days=(7, 20), steps="finance",
        templates=(
            T("知识产权质押融资（最高{amt}）", "IP-pledge loan up to {amt}", "f", only=("bank",)),
            T("{f}企业专利质押贷款", "Patent-pledge loan for {f} companies", "f", only=("bank",)),
            T("商标专用权质押贷款", "Trademark-pledge loan", "f", only=("bank",)),
            T("{brand}知易贷（专利+商标组合质押）", "{brand} IP Easy Loan: patents and trademarks pledged together", "f", only=("bank",)),
            T("软件著作权质押贷款", "Software-copyright pledge loan", "f", only=("bank",)),
            T("知识产权质押融资担保（最高{amt}）", "Guarantee for IP-pledge bank loans up to {amt}", "f",
              only=("guarantee",), terms=GUARANTEE_TERMS),
            T("{f}企业知识产权质押融资担保", "IP-pledge financing guarantee for {f} companies", "f",
              only=("guarantee",), terms=GUARANTEE_TERMS),
            T("知识产权证券化预融资", "IP securitisation bridge financing", "f", only=("bank",)),
        ),
        deliverables=(
            ("Valuation fee covered for loans above ¥1M", "贷款100万元以上评估费由机构承担"),
            ("Pledge registration with CNIPA handled for you", "协助办理国家知识产权局质押登记"),
            ("Interest-subsidy application support", "协助申请贴息补助"),
            ("Patents, trademarks and software copyrights accepted", "专利、商标、软著均可质押"),
            ("Decision within two weeks of a complete file", "资料齐全后两周内审批"),
            ("Can be combined with a credit line for a larger total", "可与信用贷款组合提高总额度"),
        ),
        audience=(
            ("Companies holding granted invention or utility-model patents", "持有已授权发明或实用新型专利的企业"),
            ("Tech SMEs without property to pledge", "缺乏不动产抵押物的科技型中小企业"),
            ("High-tech and 'little giant' enterprises", "高新技术企业及专精特新“小巨人”企业"),
        ),
        pitches=(
            ("Turn granted patents, trademarks and software copyrights into working capital: valuation, CNIPA pledge registration and the loan in one process.",
             "将已授权的专利、商标和软件著作权转化为流动资金：评估、国家知识产权局质押登记与放款一站式办理。"),
            ("Eligible for the provincial IP-pledge interest and valuation-fee subsidy.",
             "可申请省市知识产权质押融资贴息及评估费补贴。"),
        ),
        tags=("知识产权质押", "IP pledge", "专利质押", "patent finance", "贴息"),
        terms={"amin": (500_000, 1_000_000), "amax": (5_000_000, 10_000_000, 15_000_000, 20_000_000),
               "rate": (350, 430, 60, 200), "tmin": (6, 12), "tmax": (24, 36), "fee": (0,),
               **LOAN_LABELS},
    ),
    "equity-investment": SubCategory(
        count=14, types=("venture_capital", "bank"), days=(20, 60), steps="investment",
        templates=(
            T("{f}初创企业天使投资", "Angel investment for {f} start-ups", "q", only=("venture_capital",)),
            T("{f}企业A轮股权投资", "Series A equity investment for {f} companies", "q", only=("venture_capital",)),
            T("Pre-IPO成长期股权融资", "Pre-IPO growth equity round", "q", only=("venture_capital",)),
            T("投贷联动（股权+债权组合融资）", "Investment-loan linkage: equity plus venture debt", "f"),
            T("{f}企业风险债", "Venture debt for VC-backed {f} companies", "f"),
            T("可转债融资（最高{amt}）", "Convertible note financing up to {amt}", "f", only=("venture_capital",)),
            T("科创板上市前战略投资", "Strategic investment ahead of a STAR Market listing", "q", only=("venture_capital",)),
        ),
        deliverables=(
            ("Term sheet within 30 days of the first meeting", "首次会谈后30天内出具投资意向书"),
            ("Support after investment: hiring, finance and follow-on rounds", "投后赋能：招聘、财务规范、后续融资"),
            ("Introductions to partner banks for follow-on debt", "对接合作银行提供后续债权融资"),
            ("Co-investment with government guidance funds", "可联合政府引导基金共同投资"),
            ("No personal guarantee from founders on venture debt", "风险债无需创始人个人担保"),
            ("A board observer seat, not control", "仅派驻董事会观察员，不谋求控制权"),
        ),
        audience=(
            ("Start-ups with a working prototype and first customers", "已有样机和首批客户的初创企业"),
            ("Companies raising angel to Series B rounds", "正在进行天使轮至B轮融资的企业"),
            ("Founding teams that own core patents", "拥有核心专利的创始团队"),
        ),
        pitches=(
            ("We back founders in {f} with patient capital, board-level support and introductions to customers and suppliers.",
             "以耐心资本支持{f}领域创业团队，提供董事会层面的支持，并对接上下游资源。"),
            ("Our investment committee meets every two weeks, so you get an answer quickly.",
             "投资决策委员会每两周召开一次，决策高效透明。"),
        ),
        tags=("股权投资", "venture capital", "天使投资", "Series A", "投贷联动"),
        quote_brief=(
            "Attach or summarise your business plan: product and technology, traction, team, the amount you are raising, the use of funds and your valuation expectation.",
            "请附上或概述商业计划书：产品与技术、经营进展、团队、拟融资金额、资金用途及估值预期。"),
        terms={"amin": (1_000_000, 2_000_000, 3_000_000), "amax": (10_000_000, 15_000_000, 20_000_000),
               "rate": (450, 600, 100, 300), "tmin": (12, 18), "tmax": (36, 48), "fee": (0,),
               "amount_label": ("Financing amount", "融资金额"), "rate_label": ("Annual interest rate", "年利率")},
    ),
    "financing-guarantee": SubCategory(
        count=14, types=("guarantee",), days=(5, 15), steps="finance",
        templates=(
            T("科技型企业贷款担保（最高{amt}）", "Loan guarantee for tech SMEs up to {amt}", "f"),
            T("{f}企业银行贷款担保", "Bank-loan guarantee for {f} companies", "f"),
            T("政府采购合同融资担保（政采贷）", "Guarantee for government-procurement contract loans", "f"),
            T("研发项目履约保函", "Performance bond for R&D contracts", "f"),
            T("投标保函（电子保函当日出函）", "Bid bond issued online the same day", "f"),
            T("{brand}科技担保贷", "{brand} Sci-Tech guaranteed loan", "f"),
            T("首台（套）装备融资担保", "Financing guarantee for first-of-a-kind equipment makers", "f"),
        ),
        deliverables=(
            ("Guarantee fee from 1% a year, subsidised", "担保费率低至1%/年，可享补贴"),
            ("A partner network of more than 20 banks", "合作银行20余家"),
            ("Flexible counter-guarantee", "反担保方式灵活"),
            ("Approval within 10 working days", "10个工作日内完成审批"),
            ("Renewal without re-submitting documents", "续保无需重复提交资料"),
            ("Electronic letters of guarantee", "支持电子保函"),
        ),
        audience=(
            ("Tech SMEs short of collateral", "缺少抵押物的科技型中小企业"),
            ("Suppliers to government and state-owned buyers", "政府采购及国企供应商"),
            ("Companies bidding for R&D and engineering contracts", "参与研发及工程项目投标的企业"),
        ),
        pitches=(
            ("Our guarantee lets partner banks lend to you without property collateral; the fee is subsidised under the provincial policy-guarantee scheme.",
             "由我司提供担保，合作银行即可在无房产抵押的情况下放款；担保费享受省级政策性担保降费补贴。"),
            ("Counter-guarantees are flexible: equity pledge, receivables or a founders' guarantee.",
             "反担保方式灵活：股权质押、应收账款或创始人保证均可。"),
        ),
        tags=("融资担保", "guarantee", "保函", "bond", "政策性担保"),
        terms=GUARANTEE_TERMS,
    ),
    "tech-insurance": SubCategory(
        count=12, types=("insurance",), days=(3, 10), steps="insurance",
        templates=(
            T("研发费用损失保险", "R&D expense loss insurance", "f"),
            T("首台（套）重大技术装备综合保险", "First-of-a-kind major equipment insurance", "f"),
            T("新材料首批次应用保险", "First-batch application insurance for new materials", "f"),
            T("专利执行保险（维权费用补偿）", "Patent enforcement insurance covering litigation costs", "f"),
            T("{f}产品责任险", "Product liability insurance for {f} makers", "f"),
            T("关键研发人员意外及健康保险", "Accident and health cover for key R&D staff", "f"),
            T("科技型企业贷款保证保险", "Loan credit-guarantee insurance for tech SMEs", "f"),
            T("临床试验责任保险", "Clinical trial liability insurance", "f"),
            T("{f}企业财产一切险", "All-risks property insurance for {f} plants", "f"),
        ),
        deliverables=(
            ("Premium subsidy of up to 50% under the municipal scheme", "可申请最高50%的市级保费补贴"),
            ("Risk survey by our engineers", "工程师上门风险查勘"),
            ("Claims settled within 30 days", "30天内完成理赔"),
            ("Cover tailored to your project", "保障方案按项目定制"),
            ("Online policy and e-invoice", "电子保单与电子发票"),
            ("Annual risk review", "年度风险回顾"),
        ),
        audience=(
            ("Companies running funded R&D projects", "承担科技项目的企业"),
            ("Makers of first-of-a-kind equipment and new materials", "首台（套）装备及新材料生产企业"),
            ("Patent holders exposed to infringement", "面临侵权风险的专利权人"),
        ),
        pitches=(
            ("Insurance designed for technology companies: it covers the risks that stop R&D projects and first sales, and premiums qualify for the municipal subsidy.",
             "专为科技企业设计的保险产品，覆盖研发失败、首购首用等关键风险，保费可申请市级科技保险补贴。"),
            ("Claims are handled by a dedicated technology-risk team with engineers on staff.",
             "由配备工程师的科技风险专属团队处理理赔。"),
        ),
        tags=("科技保险", "insurance", "保费补贴", "risk cover", "首台套"),
        terms={"amin": (500_000, 1_000_000), "amax": (5_000_000, 10_000_000, 20_000_000),
               "rate": (40, 120, 40, 200), "tmin": (12,), "tmax": (12, 24, 36), "fee": (0,),
               "amount_label": ("Sum insured", "保险金额"), "rate_label": ("Premium rate", "保险费率")},
    ),
    # ---------------------------------------------------------------- Intellectual property
    "patent-application": SubCategory(
        count=22, types=("ip_agency",), price=(3000, 12000), days=(15, 45),
        templates=(
            T("发明专利申请代理（含检索）", "Invention patent filing with prior-art search", price=(4000, 12000)),
            T("{f}领域发明专利撰写与申请", "Invention patent drafting and filing for {f} inventions", price=(4500, 12000)),
            T("实用新型专利申请", "Utility model patent application", price=(2000, 5000)),
            T("{f}产品实用新型专利快速申请", "Fast utility model filing for {f} products", price=(2000, 5000)),
            T("外观设计专利申请", "Design patent application", price=(1200, 3500)),
            T("PCT国际专利申请", "PCT international patent application", price=(15000, 40000)),
            T("专利优先审查（快速授权）", "Fast-track patent prosecution via priority examination", price=(6000, 15000)),
            T("发明专利审查意见答复", "Office action response for invention patents", price=(1500, 5000)),
            T("{f}研发团队专利挖掘与申请包", "Patent mining and filing bundle for {f} R&D teams", price=(12000, 40000)),
        ),
        deliverables=(
            ("Patentability search report", "可专利性检索报告"),
            ("Disclosure interview with the inventors", "与发明人进行技术交底访谈"),
            ("Claims and specification drafted by a registered patent attorney", "专利代理师撰写权利要求书及说明书"),
            ("Filing with CNIPA and official-fee guidance", "向国家知识产权局递交并指导缴纳官费"),
            ("Responses to formality notices", "形式审查补正"),
            ("One office-action response included", "含一次审查意见答复"),
            ("Tracking until grant, with deadline reminders", "跟踪至授权并提醒各项期限"),
        ),
        audience=(
            ("R&D teams that need protection before a product launch", "产品上市前需要专利保护的研发团队"),
            ("Companies preparing for high-tech enterprise recognition", "准备申报高新技术企业的企业"),
            ("University spin-offs and start-ups", "高校衍生企业及初创公司"),
        ),
        pitches=(
            ("Registered patent attorneys with engineering backgrounds in {f} write claims that hold up in examination and in court.",
             "由具有{f}工程背景的专利代理师撰写，权利要求经得起审查与诉讼考验。"),
            ("Fixed fees, official fees shown separately, and a grant-rate record we publish every year.",
             "代理费明码标价，官费单列，每年公开授权率数据。"),
        ),
        tags=("专利申请", "patent", "发明专利", "CNIPA", "专利代理", "patent filing"),
    ),
    "trademark-registration": SubCategory(
        count=14, types=("ip_agency",), price=(800, 5000), days=(3, 15),
        templates=(
            T("商标注册申请（单类）", "Trademark registration in one class", price=(800, 2000)),
            T("{f}品牌商标注册（三类组合）", "Trademark filing in three classes for {f} brands", price=(2000, 5000)),
            T("马德里国际商标注册", "Madrid international trademark registration", price=(5000, 20000)),
            T("商标异议与驳回复审", "Trademark opposition and refusal review", "pq", price=(2500, 8000)),
            T("商标查询与注册风险评估", "Trademark clearance search and risk opinion", price=(500, 2000)),
            T("品牌商标全类保护方案", "Full-class brand protection plan", price=(8000, 30000)),
            T("商标续展与变更", "Trademark renewal and recordal of changes", price=(600, 2000)),
        ),
        deliverables=(
            ("Clearance search and registrability opinion", "近似查询及注册可行性意见"),
            ("Class and goods selection under the Nice classification", "按尼斯分类选择类别及商品"),
            ("Filing with the CNIPA trademark office", "向商标局递交申请"),
            ("Official fees included", "含官费"),
            ("Gazette monitoring during the opposition period", "异议期公告监控"),
            ("Certificate delivered to your office", "注册证书送达"),
        ),
        audience=(
            ("Start-ups naming a new product", "为新产品命名的初创企业"),
            ("Companies expanding into export markets", "开拓海外市场的企业"),
            ("Brand owners facing trademark squatting", "遭遇商标抢注的品牌方"),
        ),
        pitches=(
            ("Protect the name your customers know before someone else files it.",
             "在他人抢注之前，保护客户熟知的品牌。"),
            ("Our trademark attorneys check conflicts across all 45 classes before filing.",
             "提交前由商标代理人在45个类别中排查冲突。"),
        ),
        tags=("商标注册", "trademark", "品牌保护", "Madrid", "商标"),
        quote_brief=(
            "Tell us the mark (word, logo or both), the goods and services it covers, the countries you need and any conflicting marks you know of.",
            "请说明商标（文字、图形或组合）、覆盖的商品和服务、需要注册的国家以及已知的冲突商标。"),
    ),
    "patent-search": SubCategory(
        count=16, types=("ip_agency",), price=(2000, 30000), days=(5, 30), steps="analysis",
        templates=(
            T("科技查新与专利检索报告", "Novelty and patent search report", price=(1500, 5000)),
            T("{f}专利分析评议报告", "Patent landscape report on {f} technologies", price=(15000, 50000)),
            T("{f}产业专利导航", "Patent navigation study for {f} projects", "pq", price=(30000, 80000)),
            T("侵权风险检索（产品上市前）", "Infringement clearance search before launch", price=(5000, 20000)),
            T("专利无效证据检索", "Invalidity search against a competitor's patent", price=(5000, 15000)),
            T("竞争对手专利监控（年度）", "Annual competitor patent watch", price=(6000, 20000)),
            T("{f}专利技术情报简报", "Patent intelligence briefing on {f} technologies", price=(3000, 12000)),
        ),
        deliverables=(
            ("Search strategy agreed with your engineers", "与工程师确认检索策略"),
            ("Searches of CNIPA, EPO, USPTO and WIPO databases", "覆盖中、欧、美及WIPO数据库"),
            ("Ranked list of the closest documents with comments", "最相关文献列表及对比分析"),
            ("Charts of filing trends and key players", "申请趋势与主要申请人图表"),
            ("Briefing call to walk through the findings", "结果解读电话会"),
            ("Recommendations for filing or design-around", "申请或规避设计建议"),
        ),
        audience=(
            ("R&D managers planning a new project", "规划新研发项目的研发负责人"),
            ("Companies about to launch a product", "即将推出新产品的企业"),
            ("Investors doing technical due diligence", "进行技术尽调的投资机构"),
        ),
        pitches=(
            ("Know what is already patented in {f} before you invest in R&D or launch a product.",
             "在研发投入或产品上市之前，摸清{f}领域的专利现状。"),
            ("Searches are run by former examiners using commercial databases.",
             "由前审查员出身的分析师使用商业数据库检索。"),
        ),
        tags=("专利检索", "patent search", "专利分析", "landscape", "查新"),
        quote_brief=(
            "Describe the technology or product, the countries of interest, known competitors and the decision the report should support.",
            "请描述技术或产品、关注的国家和地区、已知竞争对手，以及报告要支持的决策。"),
    ),
    "ip-strategy": SubCategory(
        count=12, types=("ip_agency", "advisory"), price=(20000, 200000), days=(20, 60), steps="advisory",
        templates=(
            T("{f}产品自由实施（FTO）分析", "Freedom-to-operate analysis for a {f} product", "pq", price=(30000, 150000)),
            T("企业知识产权管理规范（GB/T 29490）贯标辅导", "IP management system (GB/T 29490) certification support", price=(20000, 60000)),
            T("{f}企业专利组合规划", "Patent portfolio strategy for {f} companies", "pq", price=(40000, 200000)),
            T("上市前知识产权合规体检", "Pre-IPO intellectual property compliance audit", "q"),
            T("海外市场知识产权风险预警", "IP risk alert for entering overseas markets", "pq", price=(30000, 120000)),
            T("知识产权年度顾问服务", "Annual IP counsel retainer", price=(20000, 80000)),
        ),
        deliverables=(
            ("Interviews with management and R&D leads", "管理层及研发负责人访谈"),
            ("Audit of existing patents, trademarks and contracts", "现有专利、商标及合同梳理"),
            ("Risk map with prioritised actions", "风险地图及优先行动清单"),
            ("Written opinion signed by a patent attorney", "专利代理师签署的书面意见"),
            ("Workshop with your team", "团队研讨会"),
            ("Follow-up review after six months", "六个月后复盘"),
        ),
        audience=(
            ("Companies preparing to launch in new markets", "准备进入新市场的企业"),
            ("Firms planning a STAR Market IPO", "筹备科创板上市的企业"),
            ("Fast-growing tech companies with scattered IP", "知识产权分散、快速成长的科技企业"),
        ),
        pitches=(
            ("Turn patents from a cost into a strategy: we align your portfolio with your product roadmap and your competitors' moves.",
             "让专利从成本变为战略：结合产品路线图与竞争对手动向规划专利布局。"),
            ("Clear go / no-go opinions that your board and investors can rely on.",
             "给出董事会和投资人可以依赖的明确结论。"),
        ),
        tags=("知识产权战略", "FTO", "IP strategy", "贯标", "风险预警"),
        quote_brief=(
            "Describe the product or technology, target markets, launch date, known competitor patents and the decision the analysis should support.",
            "请描述产品或技术、目标市场、上市时间、已知竞争对手专利，以及分析需要支持的决策。"),
    ),
    "ip-litigation": SubCategory(
        count=12, types=("ip_agency", "advisory"), price=(8000, 50000), days=(30, 180), steps="litigation",
        templates=(
            T("专利侵权诉讼代理", "Patent infringement litigation", "q"),
            T("{f}领域专利维权（诉讼+行政投诉）", "Patent enforcement for {f} companies: lawsuits and administrative complaints", "q"),
            T("专利无效宣告请求及答辩", "Patent invalidation request and defence", "pq", price=(15000, 50000)),
            T("商业秘密保护与维权", "Trade-secret protection and enforcement", "q"),
            T("跨境电商知识产权维权", "IP enforcement on cross-border e-commerce platforms", "pq", price=(8000, 30000)),
            T("海关知识产权备案与侵权货物扣留", "Customs IP recordal and seizure of infringing goods", price=(5000, 15000)),
            T("侵权警告函应对", "Response to an infringement warning letter", "pq", price=(8000, 30000)),
        ),
        deliverables=(
            ("Case assessment memo within five working days", "五个工作日内出具案件评估意见"),
            ("Evidence collection and notarised purchases", "证据收集及公证购买"),
            ("Cease-and-desist letter", "律师函"),
            ("Complaint and court filings", "起诉状及法院文书"),
            ("Court representation by IP litigators", "知识产权诉讼律师出庭"),
            ("Settlement and licence negotiation", "和解及许可谈判"),
        ),
        audience=(
            ("Patent holders whose products are being copied", "产品遭仿冒的专利权人"),
            ("Companies that have received a warning letter or a lawsuit", "收到警告函或被起诉的企业"),
            ("Brands selling on Amazon, Tmall and JD", "在亚马逊、天猫、京东销售的品牌"),
        ),
        pitches=(
            ("Litigators and patent attorneys work as one team, from evidence to judgment.",
             "诉讼律师与专利代理师组成一个团队，从取证到判决全程跟进。"),
            ("We tell you honestly whether a case is worth bringing before you spend on it.",
             "在投入费用之前，如实告诉您案件是否值得起诉。"),
        ),
        tags=("专利诉讼", "litigation", "维权", "enforcement", "无效宣告"),
        quote_brief=(
            "Describe the patent or right involved, the infringing product or party, the evidence you have, the courts or platforms concerned and your goal (injunction, damages or settlement).",
            "请说明涉及的专利或权利、侵权产品或主体、已有证据、涉及的法院或平台，以及您的目标（禁令、赔偿或和解）。"),
    ),
    # ---------------------------------------------------------------- Evaluation
    "achievement-evaluation": SubCategory(
        count=12, types=("evaluation_centre", "tech_transfer"), price=(10000, 50000), days=(15, 45),
        templates=(
            T("科技成果评价（第三方）", "Third-party evaluation of scientific achievements", price=(10000, 30000)),
            T("{f}项目科技成果鉴定评价", "Achievement appraisal for {f} projects", price=(12000, 40000)),
            T("科技奖励申报前成果评价", "Achievement evaluation for science-award applications", price=(15000, 40000)),
            T("科技项目验收绩效评价", "Performance evaluation for funded-project acceptance", "pq", price=(20000, 50000)),
            T("新产品新技术鉴定", "New product and new technology appraisal", price=(8000, 25000)),
            T("科技查新（国内外）", "Domestic and international novelty search", price=(800, 3000)),
        ),
        deliverables=(
            ("Novelty search certificate", "科技查新报告"),
            ("Panel of five senior expert reviewers", "五位高级专家组成评价委员会"),
            ("On-site inspection or online defence", "现场考察或线上答辩"),
            ("Evaluation report with a registration number", "带登记编号的评价报告"),
            ("Entry into the national achievement registry", "录入国家科技成果登记系统"),
            ("Expedited review in 10 working days", "10个工作日加急评审"),
        ),
        audience=(
            ("Research teams applying for science and technology awards", "申报科技奖励的科研团队"),
            ("Companies finishing government-funded projects", "完成政府资助项目的企业"),
            ("Universities preparing results for transfer", "准备转化成果的高校"),
        ),
        pitches=(
            ("Independent evaluation under the national achievement-evaluation standard, accepted by award committees and funding agencies.",
             "依据国家科技成果评价规范开展第三方评价，评价结果获奖励评审和项目主管部门认可。"),
            ("Expert panels drawn from our pool of reviewers in {f} and related fields.",
             "评价专家从{f}等领域专家库中遴选。"),
        ),
        tags=("成果评价", "evaluation", "科技查新", "鉴定", "科技奖励"),
        quote_brief=(
            "Describe the project, its funding source, the results to be evaluated and the deadline of the award or acceptance you are preparing for.",
            "请介绍项目情况、资助来源、需评价的成果，以及准备申报的奖励或验收截止时间。"),
    ),
    "ip-valuation": SubCategory(
        count=12, types=("evaluation_centre", "ip_agency"), price=(15000, 80000), days=(10, 30),
        templates=(
            T("专利价值评估（质押融资用）", "Patent valuation for IP-pledge loans", price=(8000, 30000)),
            T("知识产权作价入股评估", "IP valuation for a capital contribution", price=(20000, 60000)),
            T("{f}企业专利组合价值评估", "Patent portfolio valuation for {f} companies", "pq", price=(30000, 80000)),
            T("并购交易知识产权估值", "IP valuation for mergers and acquisitions", "q"),
            T("技术许可费率评估", "Royalty-rate assessment for technology licences", "pq", price=(20000, 60000)),
            T("商标品牌价值评估", "Trademark and brand valuation", price=(15000, 50000)),
        ),
        deliverables=(
            ("Valuation by certified asset appraisers", "资产评估师执业评估"),
            ("Income, market or cost approach explained", "收益法、市场法或成本法说明"),
            ("Legal and technical status review of every asset", "逐项核查法律及技术状态"),
            ("A report accepted by partner banks", "合作银行认可的评估报告"),
            ("Draft report for your comments", "初稿征求意见"),
            ("Sealed final report", "盖章正式报告"),
        ),
        audience=(
            ("Companies applying for IP-pledge loans", "申请知识产权质押贷款的企业"),
            ("Founders contributing patents to a new company", "以专利作价出资的创始人"),
            ("Investors and acquirers", "投资方与并购方"),
        ),
        pitches=(
            ("A valuation that banks, investors and the market regulator accept.",
             "出具银行、投资人和市场监管部门认可的评估报告。"),
            ("The fee is agreed up front and the report is delivered in about {days} days.",
             "费用事先确定，约{days}天交付报告。"),
        ),
        tags=("知识产权评估", "valuation", "专利价值", "作价入股", "IP pledge"),
        quote_brief=(
            "List the assets (patent numbers, trademarks, software), the purpose of the valuation, the transaction or loan involved and your deadline.",
            "请列出评估资产（专利号、商标、软件）、评估目的、涉及的交易或贷款以及时间要求。"),
    ),
    "high-tech-recognition": SubCategory(
        count=16, types=("evaluation_centre", "advisory"), price=(20000, 60000), days=(30, 120), steps="advisory",
        templates=(
            T("高新技术企业认定全程辅导", "Full support for high-tech enterprise recognition", price=(20000, 60000)),
            T("高新技术企业重新认定（复审）", "High-tech enterprise re-certification", price=(18000, 50000)),
            T("{f}企业高企认定辅导（含知识产权规划）", "High-tech recognition for {f} firms, IP planning included", price=(25000, 60000)),
            T("科技型中小企业评价入库", "Registration in the sci-tech SME database", price=(2000, 6000)),
            T("专精特新中小企业申报辅导", "Application support for specialised and sophisticated SME status", price=(15000, 40000)),
            T("高企研发费用专项审计", "Special R&D expense audit for high-tech recognition", price=(8000, 25000)),
            T("高企认定风险体检", "High-tech recognition readiness check", price=(3000, 8000)),
        ),
        deliverables=(
            ("Eligibility assessment against the recognition rules", "对照认定办法进行资格评估"),
            ("IP planning to reach the scoring threshold", "知识产权规划以达到评分要求"),
            ("R&D project and expense documentation", "研发项目及研发费用资料整理"),
            ("Special audit of R&D spending and high-tech revenue", "研发费用及高新收入专项审计报告"),
            ("Application filing and expert-review preparation", "申报材料提交及专家评审准备"),
            ("Part of the fee refunded if you are not recognised", "未通过认定退还部分费用"),
        ),
        audience=(
            ("Tech SMEs with revenue under ¥200M", "营业收入2亿元以下的科技型中小企业"),
            ("Companies whose certificate expires this year", "高企证书本年度到期的企业"),
            ("Firms seeking the 15% corporate income tax rate", "希望享受15%企业所得税优惠税率的企业"),
        ),
        pitches=(
            ("Recognition cuts corporate income tax from 25% to 15% and unlocks municipal rewards; we prepare the file so it passes expert review first time.",
             "通过认定可享受15%企业所得税优惠并获得地方奖励；我们帮助企业一次性通过专家评审。"),
            ("Our consultants have supported over {clients} successful recognitions in the region.",
             "我们已协助本地区{clients}余家企业成功通过认定。"),
        ),
        tags=("高新技术企业", "high-tech", "高企认定", "tax relief", "专精特新"),
    ),
    "trl-assessment": SubCategory(
        count=10, types=("evaluation_centre",), price=(8000, 40000), days=(10, 30),
        templates=(
            T("技术成熟度（TRL）评价", "Technology readiness level (TRL) assessment", price=(8000, 25000)),
            T("{f}技术成熟度评价报告", "TRL assessment report for {f} technologies", price=(10000, 35000)),
            T("中试前技术就绪评估", "Pre-pilot technology readiness review", "pq", price=(12000, 40000)),
            T("投资尽调技术评估", "Technical due diligence for investors", "q"),
            T("{f}技术路线评估与对标", "Roadmap assessment and benchmarking for {f} technologies", "pq", price=(20000, 40000)),
        ),
        deliverables=(
            ("TRL scoring against GB/T 22900", "依据GB/T 22900进行成熟度评级"),
            ("Review of test data and prototypes", "测试数据及样机审查"),
            ("Gap analysis to the next readiness level", "距离下一成熟度等级的差距分析"),
            ("Expert interview with your technical lead", "专家与技术负责人访谈"),
            ("Assessment report with a roadmap", "附路线图的评价报告"),
            ("Presentation to your investors or board", "向投资人或董事会汇报"),
        ),
        audience=(
            ("Teams moving from lab prototype to pilot", "从实验室样机走向中试的团队"),
            ("Investors screening deep-tech deals", "筛选硬科技项目的投资机构"),
            ("Project owners reporting to funding agencies", "向主管部门汇报的项目单位"),
        ),
        pitches=(
            ("An objective readiness level for your technology, with the evidence and the gaps spelled out.",
             "客观给出技术成熟度等级，列明依据与差距。"),
            ("Useful for investors, grant agencies and your own roadmap in {f}.",
             "适用于投资决策、项目申报及{f}技术路线规划。"),
        ),
        tags=("技术成熟度", "TRL", "技术评估", "due diligence", "GB/T 22900"),
        quote_brief=(
            "Describe the technology, the current prototype stage, the test data available and who will use the assessment (investor, agency or board).",
            "请描述技术内容、目前样机阶段、已有测试数据以及评估报告的使用方（投资人、主管部门或董事会）。"),
    ),
    # ---------------------------------------------------------------- Advisory
    "policy-grants": SubCategory(
        count=16, types=("advisory", "tech_transfer"), price=(5000, 50000), days=(15, 60),
        templates=(
            T("科技项目申报全程代理", "End-to-end applications for government technology programmes", "pq", price=(8000, 50000)),
            T("研发费用加计扣除辅导", "R&D super-deduction advisory", price=(5000, 20000)),
            T("{f}企业政策匹配与资金申报", "Policy matching and grant applications for {f} companies", price=(5000, 30000)),
            T("姑苏领军人才计划申报辅导", "Application support for the Gusu leading-talent programme", price=(15000, 50000)),
            T("省级工程技术研究中心申报", "Application for a provincial engineering research centre", price=(20000, 50000)),
            T("企业政策年度顾问（政策推送+申报）", "Annual policy adviser: alerts plus applications", price=(10000, 36000)),
            T("研发机构备案与企业技术中心申报", "R&D centre registration and enterprise technology centre application", price=(10000, 40000)),
        ),
        deliverables=(
            ("Policy-match report listing the programmes you qualify for", "可申报政策匹配报告"),
            ("Application calendar with deadlines", "申报日历及截止提醒"),
            ("Drafting of the application documents", "申报材料撰写"),
            ("Financial and R&D data preparation", "财务及研发数据整理"),
            ("Rehearsal for the expert-review defence", "专家评审答辩演练"),
            ("Follow-up until the funds arrive", "跟踪至资金到账"),
        ),
        audience=(
            ("Tech SMEs that have never applied for funding", "从未申报过项目的科技型中小企业"),
            ("Founders who qualify for talent programmes", "符合人才计划条件的创业者"),
            ("Companies with sizeable R&D spending", "研发投入较大的企业"),
        ),
        pitches=(
            ("We track national, provincial and municipal programmes so you apply for the right ones on time.",
             "跟踪国家、省、市各级政策，帮助企业按时申报合适的项目。"),
            ("Part of the fee is due only when a grant is approved, so our interests match yours.",
             "部分费用在立项成功后收取，与企业利益一致。"),
        ),
        tags=("项目申报", "grants", "政策咨询", "policy", "加计扣除"),
        quote_brief=(
            "Tell us about your company (revenue, staff, IP, R&D spending), the programmes you are interested in and the deadlines you know of.",
            "请介绍企业基本情况（营收、人员、知识产权、研发投入）、拟申报的项目及已知截止时间。"),
    ),
    "technology-consulting": SubCategory(
        count=14, types=("advisory", "tech_transfer", "testing_lab"), price=(10000, 200000), days=(15, 90),
        templates=(
            T("{f}工艺优化技术咨询", "Process optimisation consulting for {f} manufacturers", "pq", price=(20000, 150000)),
            T("{f}新产品开发技术咨询", "New product development consulting for {f} companies", "q"),
            T("技术尽职调查", "Technical due diligence", "q"),
            T("智能制造诊断与数字化转型方案", "Smart-manufacturing diagnosis and digital transformation plan", "pq", price=(30000, 200000)),
            T("{f}失效分析与技术攻关", "Failure analysis and problem solving for {f} products", "pq", price=(10000, 80000)),
            T("专家技术顾问（按天计）", "Expert technical adviser by the day", price=(3000, 12000)),
        ),
        deliverables=(
            ("Kick-off workshop and site visit", "启动研讨会及现场调研"),
            ("Diagnosis report with root causes", "问题诊断及根因分析报告"),
            ("Technical solution with options and costs", "技术方案（含备选及成本）"),
            ("Trial-run support", "试运行支持"),
            ("Knowledge transfer to your engineers", "向企业工程师进行知识转移"),
            ("Three months of follow-up questions", "三个月内免费答疑"),
        ),
        audience=(
            ("Manufacturers facing yield or quality problems", "面临良率或质量问题的制造企业"),
            ("SMEs without an in-house research department", "没有独立研发部门的中小企业"),
            ("Investors needing an independent technical view", "需要独立技术意见的投资机构"),
        ),
        pitches=(
            ("Senior engineers and university professors with hands-on experience in {f}.",
             "由具有{f}一线经验的资深工程师和高校教授提供服务。"),
            ("Clear scope, milestones and a fixed budget before work starts.",
             "开工前明确范围、里程碑与固定预算。"),
        ),
        tags=("技术咨询", "consulting", "工艺优化", "digital transformation", "技术攻关"),
        quote_brief=(
            "Describe the technical problem or goal, your product and process, what you have tried, the data you can share and your timeline.",
            "请描述技术问题或目标、产品与工艺、已尝试的方法、可提供的数据以及时间要求。"),
    ),
    "management-consulting": SubCategory(
        count=14, types=("advisory",), price=(10000, 150000), days=(20, 120), steps="advisory",
        templates=(
            T("科创板上市辅导前期咨询", "Pre-IPO readiness consulting for the STAR Market", "q"),
            T("ISO 9001质量管理体系认证辅导", "ISO 9001 quality management certification support", price=(8000, 30000)),
            T("股权激励方案设计", "Employee equity incentive plan design", "pq", price=(30000, 120000)),
            T("{f}企业精益生产咨询", "Lean production consulting for {f} plants", "pq", price=(30000, 150000)),
            T("科技企业财务规范与内控建设", "Financial controls for growing tech companies", price=(20000, 80000)),
            T("IATF 16949汽车质量体系辅导", "IATF 16949 automotive quality system support", price=(20000, 60000)),
            T("{f}企业战略规划", "Strategy planning for {f} companies", "q"),
        ),
        deliverables=(
            ("Diagnostic interviews and data review", "诊断访谈及数据梳理"),
            ("Gap analysis report", "差距分析报告"),
            ("Documented procedures and templates", "制度流程文件及模板"),
            ("Training for managers and staff", "管理人员及员工培训"),
            ("Internal audit and mock certification", "内审及模拟认证"),
            ("Three months of implementation coaching", "三个月落地辅导"),
        ),
        audience=(
            ("Founders scaling from 50 to 500 staff", "员工规模从50人扩展到500人的创业企业"),
            ("Suppliers asked by customers to certify", "被客户要求通过体系认证的供应商"),
            ("Companies planning an IPO within three years", "计划三年内上市的企业"),
        ),
        pitches=(
            ("Practical consulting that leaves working systems behind, not just slides.",
             "注重落地的咨询服务，留下可运行的管理体系，而不仅是PPT。"),
            ("Consultants who have run operations in {f} companies themselves.",
             "顾问本人具有{f}企业运营管理经验。"),
        ),
        tags=("管理咨询", "management", "ISO 9001", "股权激励", "IPO"),
        quote_brief=(
            "Describe your company (size, stage, industry), the management issue to solve, any deadlines (IPO, audit, customer requirement) and your budget range.",
            "请介绍企业规模、发展阶段和行业，需要解决的管理问题、时间节点（上市、审核、客户要求）以及预算范围。"),
    ),
    "legal-advisory": SubCategory(
        count=12, types=("advisory",), price=(3000, 80000), days=(3, 30),
        templates=(
            T("技术合同审查（许可、转让、开发）", "Review of technology licence, transfer and R&D contracts", price=(3000, 15000)),
            T("科技企业常年法律顾问", "Annual legal counsel for tech companies", price=(20000, 80000)),
            T("员工知识产权归属与保密协议", "Employee IP assignment and confidentiality agreements", price=(3000, 12000)),
            T("{f}企业融资法律服务", "Legal support for fundraising by {f} companies", "q"),
            T("数据合规与个人信息保护评估", "Data compliance and personal-information protection review", "pq", price=(20000, 80000)),
            T("出口管制与跨境技术合规", "Export control and cross-border technology compliance", "q"),
            T("股权架构设计与公司章程", "Shareholding structure and articles of association", price=(8000, 30000)),
        ),
        deliverables=(
            ("Initial consultation with a partner", "合伙人律师初次咨询"),
            ("Marked-up contract with comments", "合同修订稿及批注"),
            ("Risk memo in plain language", "通俗易懂的风险提示备忘录"),
            ("Template agreements for reuse", "可复用的协议模板"),
            ("Negotiation call with the counterparty", "参与对方谈判"),
            ("Unlimited questions during the service period", "服务期内不限次咨询"),
        ),
        audience=(
            ("Start-ups signing their first licence or R&D contract", "首次签署许可或研发合同的初创企业"),
            ("Companies raising angel or Series A rounds", "正在进行天使轮或A轮融资的企业"),
            ("Exporters of technology and software", "技术和软件出口企业"),
        ),
        pitches=(
            ("Lawyers who understand technology contracts, IP ownership and fundraising terms.",
             "熟悉技术合同、知识产权归属与融资条款的专业律师。"),
            ("Fixed fees for standard work; we tell you in advance if anything costs more.",
             "标准服务固定收费，如需额外费用会提前告知。"),
        ),
        tags=("法律咨询", "legal", "合同审查", "compliance", "法律顾问"),
        quote_brief=(
            "Describe the transaction or legal question, the parties involved, the documents you already have and your deadline.",
            "请描述交易或法律问题、涉及各方、已有文件及时间要求。"),
    ),
    # ---------------------------------------------------------------- Inspection and certification
    "testing": SubCategory(
        count=26, types=("testing_lab",), price=(800, 30000), days=(3, 20), focus=tuple(PRODUCT_FAMILIES),
        templates=(
            T("{f}电磁兼容（EMC）检测（CNAS认可）", "CNAS-accredited EMC testing for {f}", price=(3000, 30000)),
            T("{f}RoHS/REACH有害物质检测", "RoHS and REACH hazardous-substance testing for {f}", price=(800, 6000)),
            T("{f}可靠性与环境试验", "Reliability and environmental testing for {f}", price=(2000, 30000)),
            T("{f}电气安全检测", "Electrical safety testing for {f}", price=(2000, 15000)),
            T("{f}材料成分与性能分析", "Material composition and performance analysis for {f}", price=(800, 8000)),
            T("{f}失效分析检测", "Failure analysis for {f}", "pq", price=(3000, 20000)),
            T("医疗器械生物相容性检测", "Biocompatibility testing for medical devices", price=(5000, 30000)),
            T("锂电池UN38.3运输安全检测", "UN38.3 transport safety testing for lithium batteries", price=(5000, 15000)),
        ),
        deliverables=(
            ("Test plan agreed before the samples arrive", "样品到达前确认检测方案"),
            ("Testing to GB, IEC or EN standards", "依据GB、IEC或EN标准检测"),
            ("CMA/CNAS-marked test report", "带CMA/CNAS标识的检测报告"),
            ("Report in English and Chinese", "中英文双语报告"),
            ("Pre-compliance scan and debugging advice", "预测试及整改建议"),
            ("Expedited testing in three working days", "三个工作日加急"),
            ("Retest after rectification at half price", "整改后复测半价"),
        ),
        audience=(
            ("Manufacturers preparing for certification or export", "准备认证或出口的生产企业"),
            ("R&D teams validating prototypes", "验证样机的研发团队"),
            ("Buyers checking supplier quality", "核查供应商质量的采购方"),
        ),
        pitches=(
            ("Accredited laboratory with CMA and CNAS recognition; reports are accepted by certification bodies at home and abroad.",
             "实验室具备CMA和CNAS资质，报告获国内外认证机构认可。"),
            ("Standard turnaround of {days} working days, with expedited slots available.",
             "常规{days}个工作日出具报告，可加急。"),
        ),
        tags=("检验检测", "testing", "CNAS", "CMA", "检测报告", "lab test"),
        quote_brief=(
            "Describe the samples, the standards or markets you are testing for, the quantity and your deadline.",
            "请说明样品情况、检测依据标准或目标市场、数量及时间要求。"),
    ),
    "product-certification": SubCategory(
        count=16, types=("testing_lab",), price=(5000, 60000), days=(15, 90), focus=tuple(PRODUCT_FAMILIES),
        templates=(
            T("{f}CCC强制性产品认证代理", "CCC compulsory certification for {f}", price=(8000, 40000)),
            T("{f}欧盟CE认证", "EU CE marking for {f}", price=(6000, 40000)),
            T("美国FCC认证", "US FCC certification", price=(6000, 25000)),
            T("{f}CQC自愿性产品认证", "CQC voluntary certification for {f}", price=(5000, 20000)),
            T("能效标识备案与检测", "China energy-label testing and registration", price=(5000, 20000)),
            T("UL/ETL北美安全认证辅导", "UL and ETL North American safety certification support", "pq", price=(20000, 60000)),
            T("医疗器械注册检验", "Medical device registration testing", "pq", price=(20000, 60000)),
        ),
        deliverables=(
            ("Gap review of your product against the standard", "对照标准进行差距评审"),
            ("Test plan and sample list", "检测方案及样品清单"),
            ("Type testing in our accredited laboratory", "在认可实验室进行型式试验"),
            ("Technical file and declaration of conformity", "技术文件及符合性声明"),
            ("Factory inspection support", "工厂检查辅导"),
            ("Certificate and marking guidance", "证书及标识使用指导"),
        ),
        audience=(
            ("Manufacturers entering the EU, US or Chinese market", "进入欧盟、美国或中国市场的生产企业"),
            ("Companies whose certificate has lapsed", "证书过期的企业"),
            ("Start-ups launching their first hardware product", "首次推出硬件产品的初创企业"),
        ),
        pitches=(
            ("One project manager takes your product from pre-test to certificate.",
             "项目经理全程跟进，从预测试到取得证书。"),
            ("We test in-house and work with notified bodies, so there is no hand-off delay.",
             "自有实验室检测并与公告机构合作，避免交接延误。"),
        ),
        tags=("产品认证", "certification", "CCC", "CE", "FCC"),
        quote_brief=(
            "Describe the product, its target markets, any existing test reports and your launch date.",
            "请说明产品情况、目标市场、已有检测报告及上市时间。"),
    ),
    "calibration": SubCategory(
        count=12, types=("testing_lab",), price=(200, 8000), days=(2, 10), focus=tuple(GAUGES),
        templates=(
            T("{f}校准（CNAS认可）", "CNAS-accredited calibration of {f}", price=(200, 3000)),
            T("{f}上门现场校准", "On-site calibration of {f}", price=(800, 8000)),
            T("企业计量器具年度校准包", "Annual calibration package for factory instruments", price=(3000, 20000)),
            T("计量管理体系建设咨询", "Measurement management system set-up", "pq", price=(5000, 20000)),
        ),
        deliverables=(
            ("Calibration certificate with measurement uncertainty", "附测量不确定度的校准证书"),
            ("Pick-up and return of instruments", "仪器上门取送"),
            ("Calibration label on every instrument", "仪器粘贴校准标识"),
            ("Reminder before the next due date", "到期前提醒复校"),
            ("Online certificate archive", "证书在线存档查询"),
            ("Adjustment and minor repair", "调整及简单维修"),
        ),
        audience=(
            ("Factories preparing for ISO or IATF audits", "准备ISO或IATF审核的工厂"),
            ("Laboratories maintaining CNAS accreditation", "维持CNAS认可的实验室"),
            ("Quality departments managing many instruments", "管理大量仪器的质量部门"),
        ),
        pitches=(
            ("Traceable to national standards, with certificates accepted by auditors.",
             "量值溯源至国家基准，证书获审核机构认可。"),
            ("Typical turnaround of {days} working days; on-site service for large equipment.",
             "常规{days}个工作日完成，大型设备可上门校准。"),
        ),
        tags=("计量校准", "calibration", "CNAS", "量值溯源", "校准证书"),
        quote_brief=(
            "List the instruments (type, range, quantity), where they are and the date of your next audit.",
            "请列出仪器类型、量程、数量、所在地点以及下次审核时间。"),
    ),
    # ---------------------------------------------------------------- R&D resource sharing
    "instrument-booking": SubCategory(
        count=18, types=("instrument_sharing", "testing_lab"), price=(300, 5000), days=(1, 10),
        focus=tuple(INSTRUMENTS),
        templates=(
            T("{f}机时预约（含操作员）", "{f} time with an operator", price=(300, 3000)),
            T("{f}自主上机（培训后）", "{f} self-service sessions after training", price=(200, 1500)),
            T("{f}测试与数据解析", "{f} measurement with data interpretation", price=(600, 5000)),
        ),
        deliverables=(
            ("Booking confirmed within one working day", "一个工作日内确认预约"),
            ("Operation by a certified engineer", "认证工程师操作"),
            ("Raw data files", "原始数据文件"),
            ("Annotated images or spectra", "标注后的图像或谱图"),
            ("Short interpretation note", "简要数据解读"),
            ("Priority slot within 48 hours", "48小时内优先排机"),
        ),
        audience=(
            ("University and company R&D teams without their own instrument", "无自有仪器的高校及企业研发团队"),
            ("Start-ups in materials, chemistry and life sciences", "材料、化学和生命科学领域初创企业"),
            ("Quality teams investigating defects", "排查缺陷的质量团队"),
        ),
        pitches=(
            ("Shared large instruments at subsidised rates for SMEs; innovation vouchers accepted.",
             "大型科研仪器开放共享，中小企业享受优惠价格，可使用创新券。"),
            ("Book by the hour or per sample, with experienced operators.",
             "按机时或按样品预约，由经验丰富的工程师操作。"),
        ),
        tags=("仪器共享", "instrument booking", "大型仪器", "创新券", "shared facility"),
    ),
    "laboratory-access": SubCategory(
        count=12, types=("instrument_sharing", "testing_lab"), price=(3000, 50000), days=(1, 30),
        templates=(
            T("ISO 7级洁净室按月租用", "ISO class 7 cleanroom rental by the month", price=(8000, 50000)),
            T("BSL-2生物安全实验室开放使用", "BSL-2 biosafety laboratory access", price=(5000, 30000)),
            T("化学合成实验室工位租用", "Chemistry lab bench rental", price=(3000, 15000)),
            T("EMC暗室按天租用", "EMC anechoic chamber by the day", price=(4000, 20000)),
            T("{f}联合实验室共建", "Joint laboratory set-up for {f} companies", "q"),
            T("{f}开放实验室（含技术支持）", "Open laboratory for {f} teams with technical support", price=(3000, 30000)),
            T("动物实验平台使用", "Animal experiment facility access", "pq", price=(10000, 50000)),
        ),
        deliverables=(
            ("Safety induction and access card", "安全培训及门禁卡"),
            ("Bench or space with utilities", "含水电气的工位或空间"),
            ("Shared equipment included", "共用设备可使用"),
            ("Technician support during working hours", "工作时间技术员支持"),
            ("Hazardous waste disposal", "危废处置"),
            ("Monthly usage report", "月度使用报告"),
        ),
        audience=(
            ("Start-ups not ready to build their own lab", "尚无能力自建实验室的初创企业"),
            ("Teams running short projects", "开展短期项目的团队"),
            ("Companies that need a certified environment", "需要合规实验环境的企业"),
        ),
        pitches=(
            ("Ready-to-use laboratory space, so you can start experiments next week rather than next year.",
             "即租即用的实验空间，下周即可开展实验。"),
            ("Flexible terms from one day to twelve months.",
             "租期灵活，一天到十二个月均可。"),
        ),
        tags=("实验室共享", "lab access", "洁净室", "开放实验室", "共享平台"),
        quote_brief=(
            "Describe the experiments, the space and equipment you need, the safety classification and the period of use.",
            "请说明实验内容、所需空间和设备、安全等级及使用周期。"),
    ),
    "pilot-facilities": SubCategory(
        count=12, types=("instrument_sharing", "tech_transfer"), price=(20000, 300000), days=(15, 90),
        templates=(
            T("{f}中试放大服务", "Pilot-scale scale-up for {f} processes", "pq", price=(50000, 300000)),
            T("生物发酵中试平台（50L–2000L）", "Fermentation pilot plant from 50 L to 2,000 L", "pq", price=(30000, 200000)),
            T("卷对卷涂布中试线", "Roll-to-roll coating pilot line", "pq", price=(20000, 150000)),
            T("SMT电子组装中试线", "SMT electronics assembly pilot line", price=(20000, 100000)),
            T("GMP中试车间（小批量试制）", "GMP pilot workshop for small-batch production", "q"),
            T("{f}样机试制与小批量验证", "Prototype build and small-batch validation for {f} products", "pq", price=(30000, 200000)),
        ),
        deliverables=(
            ("Process review with our engineers", "工程师工艺评审"),
            ("Pilot runs on production-grade equipment", "生产级设备中试运行"),
            ("Batch records and process parameters", "批记录及工艺参数"),
            ("Quality testing of pilot batches", "中试批次质量检测"),
            ("Scale-up report with a cost estimate", "放大报告及成本测算"),
            ("Confidentiality agreement and a dedicated slot", "签署保密协议并独占时段"),
        ),
        audience=(
            ("Teams moving from lab to first production", "从实验室走向首批生产的团队"),
            ("Companies validating a process before buying equipment", "购置设备前验证工艺的企业"),
            ("University projects seeking industrial partners", "寻求产业化合作的高校项目"),
        ),
        pitches=(
            ("Prove your process at pilot scale before investing in a production line.",
             "在投资生产线之前，先在中试规模上验证工艺。"),
            ("Process engineers experienced in {f} run the trials with you.",
             "由{f}领域经验丰富的工艺工程师与您共同完成试验。"),
        ),
        tags=("中试", "pilot", "scale-up", "中试平台", "小批量试制"),
        quote_brief=(
            "Describe the product and process, the batch size, materials, quality targets and timeline.",
            "请描述产品与工艺、批量规模、原材料、质量指标及时间计划。"),
    ),
    # ---------------------------------------------------------------- Technology transfer
    "achievement-matching": SubCategory(
        count=16, types=("tech_transfer", "advisory"), price=(3000, 50000), days=(15, 90),
        templates=(
            T("{f}高校科技成果对接", "University technology matching for {f} companies", "q"),
            T("企业技术需求发布与精准对接", "Publish your technology need and get matched", "pq", price=(3000, 15000)),
            T("{f}专场技术路演对接会", "Technology roadshow for {f} projects", "pq", price=(5000, 30000)),
            T("产学研合作项目策划", "Planning an industry–university research collaboration", "q"),
            T("{f}海外技术引进对接", "International technology sourcing for {f} companies", "q"),
            T("科技成果转化项目评估与包装", "Packaging university results for commercial transfer", "pq", price=(10000, 50000)),
        ),
        deliverables=(
            ("Needs interview and technology brief", "需求访谈及技术需求书"),
            ("Search across 200+ universities and institutes", "检索200余家高校院所成果"),
            ("Shortlist of candidate technologies", "候选技术清单"),
            ("Organised meetings with research teams", "组织与科研团队对接"),
            ("Support in negotiating terms", "协助商务谈判"),
            ("Follow-up until the contract is signed", "跟踪至合同签订"),
        ),
        audience=(
            ("SMEs looking for a technology to upgrade a product", "寻求技术升级产品的中小企业"),
            ("Companies setting up joint R&D with universities", "与高校共建研发的企业"),
            ("Universities seeking industrial partners", "寻找产业合作方的高校"),
        ),
        pitches=(
            ("We find the university lab that has already solved your problem in {f}.",
             "帮您找到已在{f}领域解决类似问题的高校实验室。"),
            ("Our technology managers have brokered {clients}+ projects with universities in the Yangtze River Delta.",
             "我们的技术经理人已促成长三角高校合作项目{clients}余项。"),
        ),
        tags=("成果转化", "technology transfer", "产学研", "matching", "技术对接"),
        quote_brief=(
            "Describe the technical need, the product it is for, your budget for acquiring or co-developing the technology, and your timeline.",
            "请描述技术需求、应用产品、技术引进或合作开发预算以及时间计划。"),
    ),
    "licensing-brokerage": SubCategory(
        count=14, types=("tech_transfer", "ip_agency"), price=(3000, 60000), days=(15, 90),
        templates=(
            T("专利许可交易经纪", "Patent licensing brokerage", "q"),
            T("专利转让交易代理（含权属变更）", "Patent assignment with recordal of the transfer", price=(3000, 12000)),
            T("{f}专利开放许可对接", "Open licensing of {f} patents", "pq", price=(5000, 20000)),
            T("高校专利批量许可谈判", "Negotiating bundled licences from universities", "q"),
            T("技术许可合同起草与谈判", "Drafting and negotiating technology licence agreements", "pq", price=(10000, 40000)),
            T("{f}专利运营与变现", "Patent monetisation for {f} portfolios", "q"),
        ),
        deliverables=(
            ("Valuation range for the licence", "许可价格区间评估"),
            ("Identification of licensees or licensors", "寻找被许可方或许可方"),
            ("Term sheet and licence draft", "意向书及许可合同草案"),
            ("Negotiation support", "谈判支持"),
            ("Recordal with CNIPA", "国家知识产权局备案"),
            ("Royalty collection follow-up", "许可费收取跟踪"),
        ),
        audience=(
            ("Patent owners with unused patents", "有闲置专利的专利权人"),
            ("Companies that need a licence to launch", "需获得许可才能上市的企业"),
            ("Universities commercialising research results", "推动成果转化的高校"),
        ),
        pitches=(
            ("We bring licensors and licensees together and close the deal on fair terms.",
             "撮合许可方与被许可方，按公平条款促成交易。"),
            ("Brokerage fees are success-based, so you pay when a licence is signed.",
             "经纪服务按成交收费，签约后才付费。"),
        ),
        tags=("技术许可", "licensing", "专利转让", "开放许可", "技术经纪"),
        quote_brief=(
            "List the patents or technologies, whether you are licensing in or out, the target field and territory, and the terms you expect.",
            "请列出涉及的专利或技术、许可方向（引进或许出）、领域与地域范围以及期望条件。"),
    ),
    "tech-manager": SubCategory(
        count=14, types=("tech_transfer",), price=(2000, 80000), days=(5, 60),
        templates=(
            T("技术合同认定登记代办", "Technology contract registration for tax exemption", price=(1500, 5000)),
            T("驻企技术经理人（年度）", "Resident technology manager, annual", price=(30000, 80000)),
            T("{f}技术转移项目全程管理", "End-to-end transfer project management for {f} technologies", "pq", price=(20000, 80000)),
            T("技术经理人培训与认证", "Technology-manager training and certification", price=(3000, 12000)),
            T("{f}企业技术转移体系建设", "Setting up a technology transfer office for {f} firms", "pq", price=(20000, 60000)),
            T("科技成果转化收益分配方案设计", "Revenue-sharing design for commercialised research", price=(10000, 40000)),
        ),
        deliverables=(
            ("A dedicated certified technology manager", "专属持证技术经理人"),
            ("Monthly project report", "月度项目报告"),
            ("Contract registration for VAT and income-tax benefits", "技术合同登记以享受增值税及所得税优惠"),
            ("Introductions to investors and partners", "对接投资人和合作方"),
            ("Templates for transfer agreements", "成果转化协议模板"),
            ("Quarterly review with management", "季度管理层回顾"),
        ),
        audience=(
            ("Companies with several transfer projects under way", "同时推进多个转化项目的企业"),
            ("Universities and institutes without a transfer office", "尚未设立技术转移机构的高校院所"),
            ("Firms selling technology services that qualify for tax relief", "提供技术服务、可享受税收优惠的企业"),
        ),
        pitches=(
            ("Certified technology managers handle the paperwork, negotiations and follow-up of your transfer projects.",
             "由持证技术经理人负责成果转化项目的手续、谈判与后续跟进。"),
            ("Registered technology contracts are exempt from VAT and reduce income tax.",
             "经认定登记的技术合同可免征增值税并享受所得税减免。"),
        ),
        tags=("技术经理人", "tech manager", "技术合同登记", "成果转化", "tax relief"),
        quote_brief=(
            "Describe the projects, the parties involved, what stage they are at and what you need the technology manager to do.",
            "请介绍项目情况、涉及各方、目前进展以及需要技术经理人承担的工作。"),
    ),
}

"""The demo's case mix: category weights per township kind and typical case titles.

Shared by the demo history loader (``etl/demo.py``) and the live simulator
(``gridwatch/simulate.py``), so both draw cases alike. Constants only.
"""

from __future__ import annotations

__all__ = ["MIX_RURAL", "MIX_URBAN", "TOWNSHIP_WEIGHT", "TITLES"]

# Category mix per township kind (weights); urban (街道) cases lean to property, consumer and street order.
MIX_RURAL = {
    "neighbour": 14, "marriage_family": 8, "housing_homestead": 9, "forest_land": 6, "project_contract": 4, "labour": 4,
    "property_mgmt": 1, "consumer": 3, "pollution": 3, "land_acquisition": 4, "damage_compensation": 5,
    "traffic_accident": 3, "other_dispute": 3, "city_appearance": 6, "advertising": 1, "construction": 3,
    "street_order": 3, "emergency": 1, "other_event": 4,
}
MIX_URBAN = {
    "neighbour": 10, "marriage_family": 6, "housing_homestead": 2, "forest_land": 0.3, "project_contract": 5, "labour": 7,
    "property_mgmt": 9, "consumer": 7, "pollution": 2, "land_acquisition": 2, "damage_compensation": 4,
    "traffic_accident": 4, "other_dispute": 3, "city_appearance": 12, "advertising": 4, "construction": 5,
    "street_order": 11, "emergency": 1, "other_event": 3,
}
TOWNSHIP_WEIGHT = {"街道": 3.0, "镇": 1.2, "乡": 0.8}
TITLES = {
    "neighbour": ["院墙边界纠纷", "排水引发邻里矛盾", "噪音扰邻纠纷", "通行道路纠纷"],
    "marriage_family": ["赡养老人纠纷", "离婚财产分割纠纷", "家庭矛盾调解"],
    "housing_homestead": ["宅基地界址纠纷", "房屋买卖纠纷", "翻建房屋遮挡采光"],
    "forest_land": ["承包地边界纠纷", "林地权属纠纷", "土地流转费纠纷"],
    "project_contract": ["拖欠工程款", "施工合同纠纷"],
    "labour": ["拖欠农民工工资", "工伤赔偿争议", "劳动合同纠纷"],
    "property_mgmt": ["物业费纠纷", "小区电梯停运", "物业服务投诉"],
    "consumer": ["预付卡退费纠纷", "商品质量投诉"],
    "pollution": ["养殖场异味扰民", "污水直排", "烧烤油烟扰民"],
    "land_acquisition": ["征地补偿款纠纷", "拆迁安置纠纷"],
    "damage_compensation": ["牲畜损害赔偿", "财产损害赔偿纠纷"],
    "traffic_accident": ["交通事故赔偿纠纷"],
    "other_dispute": ["其他矛盾纠纷"],
    "city_appearance": ["垃圾堆放", "道路破损", "井盖缺失"],
    "advertising": ["违规张贴小广告", "广告牌破损"],
    "construction": ["夜间施工扰民", "工地扬尘"],
    "street_order": ["占道经营", "乱停乱放"],
    "emergency": ["突发火情", "道路塌陷"],
    "other_event": ["其他事件"],
}

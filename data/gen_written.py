#!/usr/bin/env python3
"""Builds data/written/*.jsonl from the hand-written fragments below.

Everything in this file was written for hotline-gateway by its engineers from domain knowledge
(the official people's-mediation categories, common legal-aid topics, how 12345/110/12348
operators write their notes). Nothing is copied from a public data set.

Each category has situations (what happened). A situation is put into consultation frames
(a caller asking a lawyer what the law says) and into dispute frames (an operator's note of a
live dispute that needs a mediator), so the service model learns the frames and the category
model learns the situations. Hand-written whole tickets follow at the end of the file.

Run: python3 data/gen_written.py   (deterministic: fixed seed)
"""

import json
import random

random.seed(20261124)

SITUATIONS = {
    "marriage_family": [
        "我和老公结婚五年，他经常不回家，我想离婚",
        "离婚后孩子跟着前夫，他不让我探视孩子",
        "前夫离婚后一直不给孩子抚养费",
        "老人有三个儿子，都不愿意出赡养费",
        "订婚时给了女方十八万彩礼，现在女方悔婚",
        "父亲去世没有留遗嘱，兄弟姐妹为分遗产闹翻",
        "丈夫喝酒后经常动手，家暴好几次了",
        "婚前我父母出钱买的房子，离婚时妻子要分一半",
        "婆婆和儿媳天天吵架，要分家",
        "奶奶留下的老房子，几个子女都想继承",
        "老公在外面有了小三，还转移夫妻共同财产",
        "女儿出嫁后还要不要给父母养老",
        "再婚家庭继子女的继承权",
        "离婚协议上写好的房子，对方现在反悔不过户",
    ],
    "neighbour": [
        "楼上邻居家每天晚上很晚还在蹦跳，噪音很大",
        "隔壁邻居在公共通道堆放杂物，出入不方便",
        "邻居家的空调外机正对我家窗户，热风直吹",
        "楼上卫生间漏水，把我家天花板泡坏了，邻居不肯修",
        "邻居新盖的房子挡住了我家的采光",
        "邻居家养的狗整夜叫，还在楼道里拉屎",
        "两家之间的围墙倒了，对邻居重新砌墙的位置有争议",
        "邻居家的滴水檐滴到我家院子里",
        "隔壁在楼道里养鸡鸭，气味很大",
        "邻居装修把我家墙打裂了",
        "邻居占了两家共用的出路，不让我家车通行",
        "邻居的树长过来挡住了我家的门",
    ],
    "housing_land": [
        "买的二手房交了定金，房东突然涨价不卖了",
        "两家宅基地的地界不清，对方把墙砌到我家地里",
        "村里把我家的承包地收回去给别人种",
        "租房到期了房东不退押金",
        "交房后发现房屋面积比合同少了好几平米",
        "房产证上只写了哥哥的名字，房子是父母出钱盖的",
        "开发商延期交房一年多了",
        "山林的林权证和邻村的界址重叠",
        "租客拖欠半年房租还不肯搬走",
        "买了小产权房，现在办不了过户",
        "土地承包合同没到期，村委会要收回责任田",
        "祖屋被堂兄占着住，不让我们回去住",
    ],
    "demolition": [
        "村里征地，给的补偿标准太低",
        "拆迁办没有签协议就把我家房子强拆了",
        "拆迁安置房一直没有交付，过渡费也停了",
        "棚改项目的拆迁款被村干部扣了一部分",
        "征收决定下来了，对补偿安置方案不服",
        "地里的青苗费一直没有发放",
        "被拆迁户的户口认定有争议，少分了一套安置房",
        "旧改项目要求搬迁，但评估价太低",
        "回迁房的楼层分配不公平",
        "土地补偿款被村委会拿去分了，外嫁女没有份",
    ],
    "contract_debt": [
        "朋友借了我五万块钱，写了借条，到期一直不还",
        "我给别人做担保人，现在债主要我替他还钱",
        "对方欠我货款十二万，拖了一年多",
        "签了装修合同付了定金，对方违约不干了",
        "借了网贷，利息太高还不上，催收天天打电话",
        "亲戚借钱时只有微信转账记录，没有借条",
        "合同约定的违约金太高，对方要我赔",
        "房子抵押给别人借钱，现在对方要收房",
        "合伙做生意借的钱，对方不认账",
        "欠条过了三年还能不能要回来",
        "民间借贷约定的利息超过了法律规定",
        "签了买卖合同，对方收钱不发货",
        "替朋友刷信用卡，朋友不还钱",
    ],
    "business": [
        "和朋友合伙开公司，对方不让我查账目",
        "我是小股东，公司赚钱了从来不分红",
        "公司法定代表人是我，但我没有参与经营",
        "加盟了一个品牌，总部承诺的支持都没有兑现",
        "股权转让协议签了，对方不给钱",
        "公司要注销，还有债务没清算",
        "合伙人卷走了公司的钱",
        "公司注册资本认缴了还没实缴，现在有债务",
        "承包经营的厂子，发包方提前收回",
        "我们公司的商标被别人抢注了",
        "个体户和供货商之间的货款结算有分歧",
    ],
    "injury": [
        "在超市里滑倒摔伤了，超市不肯赔",
        "被邻居家的狗咬伤了，打了狂犬疫苗",
        "孩子在学校被同学打伤，对方家长不管",
        "楼上掉下来的花盆砸伤了人",
        "被人在网上造谣诽谤，名誉受损",
        "在工地旁边走路被掉落的钢管砸伤",
        "别人未经同意用我的照片做广告，侵犯肖像权",
        "被人打伤住院，医药费和误工费要对方赔",
        "小孩在游乐场玩耍时受伤骨折",
        "雇的保姆在我家干活时摔伤了，要我赔偿",
        "人身损害赔偿的伤残鉴定怎么做",
    ],
    "labour": [
        "老板拖欠了我三个月工资",
        "在工地干活，包工头跑了，工钱没人给",
        "公司没有签劳动合同，现在要辞退我",
        "上班时受了工伤，公司不给报销",
        "公司让我们每天加班，不给加班费",
        "试用期被公司无故辞退",
        "公司裁员，不给经济补偿",
        "单位不给我们交社保",
        "干了一年的农民工工资一直没结",
        "辞职后公司扣着最后一个月工资不发",
        "怀孕了被公司解雇",
        "劳务公司派遣到工厂，出了工伤两边推",
        "工作了八年，公司突然要我们自动离职",
    ],
    "consumer": [
        "网购的手机是假货，商家不给退货",
        "在健身房办了会员卡，健身房跑路了",
        "买的新车有质量问题，4s店不给换",
        "跟旅行社出去旅游，导游强迫购物",
        "超市买到过期食品",
        "装修公司用的材料和合同不一样",
        "美容院办的预付卡，店铺关门了",
        "买的家电坏了，售后一直推脱",
        "培训机构收了学费不退款",
        "外卖吃出了异物，商家只肯退钱",
        "商家虚假宣传，买到的产品效果完全不一样",
    ],
    "medical": [
        "父亲在医院做手术后死亡，怀疑是医疗事故",
        "在诊所输液后出现过敏，诊所不承认",
        "医院误诊耽误了治疗",
        "整形手术失败，脸上留了疤",
        "孩子出生时因为医生操作失误落下残疾",
        "医院不给复印病历",
        "住院期间摔倒骨折，医院说不负责",
        "卫生院开错了药，吃了以后住院",
        "医疗纠纷要不要做医疗鉴定",
        "牙科诊所种牙失败还要继续收费",
    ],
    "traffic": [
        "骑电动车被小轿车撞了，司机逃逸了",
        "交通事故责任认定我是次责，对方要我赔一半",
        "开车被后车追尾，对方保险公司不肯理赔",
        "被货车撞伤住院，对方只垫付了一点医药费",
        "停车时刮蹭了别人的车，对方要价太高",
        "对方酒驾撞了我家老人",
        "坐出租车出了车祸受伤",
        "交强险赔偿不够，肇事司机不肯出剩下的",
        "三轮车和摩托车相撞，交警认定双方同责",
        "车辆定损金额和修理厂报价差很多",
    ],
    "property_mgmt": [
        "物业公司不管事，还要涨物业费",
        "小区电梯经常坏，物业一直不修",
        "物业乱收停车费，不交就不让进小区",
        "业主委员会选举，物业公司从中阻挠",
        "维修基金被物业挪用",
        "小区车位被物业卖给外人",
        "物业停了我家的水电，逼我交物业费",
        "楼道灯坏了好几个月，物业不管",
        "物业保安打了业主",
        "家里被盗，物业的监控是坏的",
    ],
    "environment": [
        "村旁边的化工厂排污，河里的鱼都死了",
        "附近养猪场臭味很大，影响生活",
        "工地晚上施工，噪音吵得睡不着",
        "楼下饭店的油烟排到我家窗户",
        "厂里排放废气，周围很多人咳嗽",
        "搅拌站粉尘很大，庄稼都盖满了灰",
        "有人在河边焚烧垃圾",
        "工厂排的污水流进了我家鱼塘",
        "养殖场的粪水流到农田里",
    ],
    "criminal": [
        "家里人因为打架被派出所拘留了",
        "儿子因为盗窃被逮捕，能不能取保候审",
        "在网上被骗了两万块钱",
        "被人敲诈勒索，对方说不给钱就曝光",
        "酒后和别人斗殴，把人打成轻伤",
        "亲戚被抓了，说是涉嫌诈骗",
        "老公参与赌博被抓了",
        "被人殴打，派出所不立案",
        "朋友介绍的工作是传销",
        "有人在村里寻衅滋事，经常打人",
        "犯罪以后自首可以减刑吗",
    ],
    "administrative": [
        "城管没收了我的三轮车，还罚款",
        "对行政处罚决定不服，想申请行政复议",
        "向政府申请信息公开，一直没有答复",
        "派出所不给我办户口迁移",
        "交通违章罚款处罚有错误",
        "营业执照被市场监管局吊销了",
        "房子被认定违章建筑要强制拆除，没有听证",
        "政府部门不作为，想起诉",
        "行政机关的决定侵犯了我的合法权益",
    ],
}

# More situations, written for the categories with the widest vocabulary.
SITUATIONS["injury"] += ['走在路上被广告牌砸伤，商家说不关他的事', '和别人发生口角被推倒，手臂骨折', '被邻居家的猫抓伤，打针花了好几百', '在饭店吃饭时地滑摔倒，腰部受伤', '小区里的树枝掉下来砸坏了我的车', '被人打成轻微伤，对方只愿意赔一点医药费', '孩子在培训班上课时摔伤了牙齿', '雇人干活时工人从梯子上摔下来骨折', '别人在网上发我的个人信息，泄露隐私', '受伤后做了伤残鉴定是十级伤残，赔偿怎么算']
SITUATIONS["medical"] += ['在医院生孩子时大出血，怀疑医生处理不当', '药店卖的药吃出了问题', '做完手术后伤口感染，又住了一个月院', '医院的护士打针打错了', '在私人诊所拔牙后一直发炎', '老人在养老院摔伤送医院抢救无效死亡', '医院检查漏诊，后来查出是癌症晚期', '医生没有告知手术风险就做了手术', '美容院做医美注射后脸部肿胀', '精神病医院强制收治是否合法']
SITUATIONS["business"] += ['公司股东之间意见不合，要解散公司', '小股东想退股，大股东不同意', '公司的法人代表变更后原来的债务谁承担', '合伙经营的饭店亏损了，合伙人要退伙', '公司老板抽逃出资，债权人找谁', '公司拖欠供应商货款后注销了', '用个人名义替公司签的借款合同', '开了一家公司做代理，品牌方突然解约', '朋友借用我的身份证注册公司当法人', '公司账目不清，股东要求查账被拒']
SITUATIONS["consumer"] += ['在网上买的衣服质量很差，店家拒绝退货', '手机刚买一个月就坏了，商家不给保修', '办的理发卡还没用完，店铺换了老板不认', '在商场买的金饰检测不是足金', '订的酒店到了说没有房间', '报了旅游团，行程被随意更改', '买的二手车被隐瞒了事故', '充值的游戏账号被封，平台不退钱', '物流把快递弄丢了，只肯按运费赔偿', '买的保健品宣称能治病，吃了没有效果']
SITUATIONS["administrative"] += ['社保局不认定我的工伤', '不服派出所作出的拘留决定', '政府部门征收我家房屋没有依法补偿', '申请的营业执照被拒绝办理', '环保局对我的工厂罚款太重', '交警扣了我的车一直不还', '城管拆除了我的摊位', '对公安机关不予立案的决定不服', '国土部门给别人发了我家土地的证', '乡政府不给办理宅基地审批']
SITUATIONS["contract_debt"] += ['借钱给同事，他离职后联系不上', '对方签了欠条以后一直说没钱', '我替别人还了钱，能不能向他追偿', '借款合同约定的利息是月息三分', '买家收货后拒不支付尾款', '工程款结算后发包方一直拖着不付', '亲戚用我的名义贷款不还', '对方写的借条没有签日期']
SITUATIONS["labour"] += ['公司降薪降职逼我辞职', '下班路上出了车祸算不算工伤', '单位不给发年终奖', '签了竞业限制协议，公司不给补偿金', '劳动仲裁裁决后公司不履行', '被公司调岗到外地，不去就算旷工', '工厂没有安全防护，我的手被机器压伤']
SITUATIONS["traffic"] += ['骑自行车被电动车撞倒', '被撞后对方保险公司拒赔', '我开车撞了行人，对方要求高额赔偿', '事故后对方车辆没有保险', '停在路边的车被撞了，肇事车跑了']
SITUATIONS["criminal"] += ['被人冒用身份贷款，报警后怎么处理', '儿子未成年，因为打架被抓', '亲戚因为酒驾被判了拘役', '网上刷单被骗了三万元', '朋友借了钱后说是被人骗了要报案']

# A lawyer is asked: what does the law say, what can I do.
CONSULT = [
    "{s}，请问我该怎么办？",
    "{s}，我想咨询一下这种情况怎么处理",
    "你好，{s}，这样合法吗？",
    "{s}，可以起诉吗？",
    "请问{s}，法律上是怎么规定的？",
    "{s}，需要准备什么证据去打官司？",
    "律师你好，{s}，我能要求赔偿吗",
    "{s}，请问对方要承担什么法律责任",
    "想问一下，{s}，去法院起诉需要什么材料",
    "{s}怎么办",
    "咨询：{s}，能不能要回来",
    "{s}，请问诉讼时效是多久",
    "来电人咨询：{s}，问如何维权。",
    "来电人称{s}，想了解相关法律规定，咨询是否可以起诉。",
    "{s}，我该找律师还是直接去法院",
    "如果{s}，会怎么判",
    "{s}？",
]

# A mediator is needed: two parties, a live quarrel, a request to step in.
DISPUTE = [
    "来电人反映{s}，双方多次协商未果，请求调解。",
    "民警到场后了解到{s}，现场双方情绪激动，发生争执，建议移交人民调解。",
    "{s}，双方因此吵了起来，来电人请求有关方面出面协调。",
    "申请人称{s}，与被申请人协商无果，向调委会申请调解。",
    "110转来：{s}，双方在现场争吵，互不相让，需要调解员介入。",
    "来电人称{s}，对方拒不处理，两家闹得很僵，希望调解员上门调解。",
    "{s}，双方矛盾激化，差点打起来，请求帮忙解决。",
    "当事人反映{s}，多次找对方协商都不肯让步，现申请调解。",
    "经了解，{s}，双方僵持不下，民警已劝离，建议调委会跟进调处。",
    "{s}，为此双方发生纠纷，经调解员调解，双方达成协议。",
    "报警人称{s}，对方不肯赔偿，现场发生口角，民警到场调解。",
    "{s}，双方协商未果，闹到了村委会，请求人民调解委员会调处。",
]

THIRD = ["来电人", "当事人", "王某", "李女士", "张某", "刘先生", "申请人"]


def third_person(s: str) -> str:
    who = random.choice(THIRD)
    return s.replace("我们", "他们").replace("我家", "其家").replace("我", who)


# Department matters (12345 style): not for a lawyer or a mediator.
OOS_SITUATIONS = [
    "小区门口的路灯坏了半个月，晚上很黑",
    "家里停水两天了，也没有通知",
    "马路上的井盖丢了，很危险",
    "孩子今年上小学，学位分配不合理",
    "公交车站台离小区太远，想增加一条公交线路",
    "低保政策怎么申请",
    "社保卡丢了怎么补办",
    "医保报销比例是多少",
    "公积金提取需要哪些材料",
    "老旧小区改造什么时候开始",
    "路面坑洼不平，下雨天到处积水",
    "下水道堵了，污水流到路上",
    "小区供暖温度不达标",
    "天然气开户办理流程",
    "道路两边占道经营，交通拥堵",
    "办理居住证需要什么材料",
    "新生儿上户口怎么办理",
    "红绿灯时间太短，行人过不去",
    "幼儿园收费太高，希望教育部门管一管",
    "养老金什么时候调整",
    "申请加装电梯的补贴政策",
    "建议在小区附近修建一个公园",
    "地铁施工围挡占用人行道",
    "垃圾清运不及时，小区门口堆满了垃圾",
    "出租车拒载",
    "学校补课收费",
    "准生证办理要什么手续",
    "农村危房改造补贴怎么申请",
    "高龄老人补贴没有发放",
    "残疾证怎么办理",
    "村里的路灯不亮",
    "希望增加社区卫生服务站",
    "疫苗接种点的预约方式",
    "自来水水压太低，高层用不上水",
    "小区旁边的道路限速标志不清楚",
    "不动产登记需要排队多久",
    "失业保险金怎么领取",
    "退役军人优待证怎么办",
]

OOS_FRAMES = [
    "来电人反映{s}，希望有关部门尽快处理。",
    "市民来电：{s}，请相关部门解决。",
    "{s}，请问找哪个部门？",
    "咨询{s}。",
    "{s}，希望政府重视。",
    "来电人咨询{s}，已告知办理渠道。",
    "尊敬的领导：{s}，恳请相关部门尽快解决，谢谢。",
    "{s}，打了好几次电话都没人管，希望市长关注。",
    "{s}，建议有关部门整改。",
]

# Whole tickets written by hand: harder phrasings the frames do not cover.
HANDWRITTEN = [
    ("legal_consultation", "labour", "我在厂里干了三年，没签合同，现在老板让我走人，能要双倍工资吗"),
    ("legal_consultation", "labour", "工伤认定要多长时间，公司不配合怎么办"),
    ("legal_consultation", "marriage_family", "离婚的话孩子两岁，抚养权一般判给谁"),
    ("legal_consultation", "marriage_family", "父母的房子只写了我弟弟的名字，我有没有继承权"),
    ("legal_consultation", "contract_debt", "借条上没写还款日期，现在去要钱他说还没到期，怎么办"),
    ("legal_consultation", "contract_debt", "担保人要承担多少责任，借款人跑了"),
    ("legal_consultation", "criminal", "我弟弟被刑事拘留了，家属能不能请律师会见"),
    ("legal_consultation", "criminal", "故意伤害致人轻伤一般判几年"),
    ("legal_consultation", "traffic", "出了车祸对方全责，误工费怎么算"),
    ("legal_consultation", "medical", "医院手术出了问题，医疗鉴定去哪里申请"),
    ("legal_consultation", "consumer", "买到假冒产品，能要求退一赔三吗"),
    ("legal_consultation", "housing_land", "农村宅基地能不能卖给外村人"),
    ("legal_consultation", "demolition", "拆迁补偿是按房产证面积还是实际面积算"),
    ("legal_consultation", "business", "有限公司的股东要对公司债务承担责任吗"),
    ("legal_consultation", "administrative", "被罚款了不服，行政诉讼的期限是多久"),
    ("legal_consultation", "injury", "被狗咬了，狗主人不承认，怎么取证"),
    ("legal_consultation", "property_mgmt", "物业服务差，业主能不能拒交物业费"),
    ("legal_consultation", "environment", "工厂排污导致鱼塘死鱼，能索赔多少"),
    ("legal_consultation", "neighbour", "邻居家装修把我家墙面弄裂了，法律上该谁负责"),
    ("mediation", "neighbour", "来电人称楼上住户深夜噪音扰民，上门沟通时双方发生口角，现请求社区调解员调解。"),
    ("mediation", "labour", "二十多名农民工聚集在项目部门口讨要工钱，包工头称开发商未付款，双方僵持，民警到场维持秩序，需调解。"),
    ("mediation", "marriage_family", "民警到场：夫妻二人因家务琐事争吵，妻子要求离婚，丈夫不同意，双方情绪激动，建议移交调解。"),
    ("mediation", "contract_debt", "王某借给李某三万元，到期未还，王某上门讨债时双方推搡，派出所出警后建议双方到调委会调解。"),
    ("mediation", "traffic", "两车在路口刮蹭，双方对赔偿金额有分歧，堵在路口争吵，交警处理后转人民调解。"),
    ("mediation", "medical", "患者家属认为医院治疗不当导致病情加重，聚集在医院门口要求赔偿，医院请求医调委介入调处。"),
    ("mediation", "property_mgmt", "小区业主与物业公司因停车费上涨发生争执，数十名业主聚集在物业办公室，请求街道调解。"),
    ("mediation", "housing_land", "两兄弟因父母留下的宅基地分割问题发生矛盾，多次争吵，村调委会介入调解。"),
    ("mediation", "consumer", "消费者在商场买的衣服要求退货，商家不同意，双方在店内争吵，民警到场后建议调解。"),
    ("mediation", "injury", "两名学生打闹中一人受伤，双方家长就医药费分担问题争执不下，学校申请调解。"),
    ("mediation", "environment", "养殖场异味影响周边村民生活，村民多次与场主交涉无果，双方矛盾加深，请求镇调委会调处。"),
    ("mediation", "demolition", "拆迁户对补偿金额不满，拒绝搬迁，与施工方发生争执，社区请求调解。"),
    ("mediation", "business", "合伙开饭店的两人因利润分配闹翻，一方锁了店门，另一方报警，民警建议调解。"),
    ("mediation", "criminal", "两人酒后因琐事发生打斗，一方轻微受伤，民警到场处置后，双方同意就赔偿问题进行治安调解。"),
    ("out_of_scope", "other", "来电人反映小区楼下的下水道井盖松动，车开过去响声很大，希望市政部门维修。"),
    ("out_of_scope", "other", "想问一下孩子的疫苗本丢了怎么补"),
    ("out_of_scope", "other", "请问办身份证需要带什么"),
    ("out_of_scope", "other", "来电人咨询医保异地就医备案怎么办理，已告知。"),
    ("out_of_scope", "other", "某路段的路灯晚上不亮，行人摔倒过好几次，请尽快修复。"),
    ("out_of_scope", "other", "建议公交公司在早高峰加开班次。"),
]


def rows():
    for category, situations in SITUATIONS.items():
        for s in situations:
            for frame in random.sample(CONSULT, 4):
                yield {
                    "text": frame.format(s=s),
                    "service": "legal_consultation",
                    "category": category,
                }
            for frame in random.sample(DISPUTE, 3):
                yield {
                    "text": frame.format(s=third_person(s)),
                    "service": "mediation",
                    "category": category,
                }
    for s in OOS_SITUATIONS:
        for frame in random.sample(OOS_FRAMES, 4):
            yield {"text": frame.format(s=s), "service": "out_of_scope", "category": "other"}
    for service, category, text in HANDWRITTEN:
        yield {"text": text, "service": service, "category": category}


# Short legal questions (issue 17), written for this project: who is liable, what compensation,
# demolition, dismissal, debts, penalties. Real callers ask these in one line, without the
# frames above; each is used as it is and with two short frames, all as legal consultations.
SHORT_QUESTIONS = [
    ("injury", "在超市滑倒摔伤了，超市要负责吗"),
    ("injury", "小孩在学校被同学打伤了，谁来赔"),
    ("injury", "楼上掉下来的东西砸伤了人，责任谁承担"),
    ("injury", "被邻居家的狗咬了，狗主人要赔什么"),
    ("injury", "在饭店吃饭被烫伤，店家有没有责任"),
    ("injury", "朋友喝酒后出了事，一起喝酒的人要担责吗"),
    ("injury", "帮人干活摔伤了，雇主要不要赔"),
    ("traffic", "骑电动车被汽车撞了，对方全责能赔多少"),
    ("traffic", "交通事故对方逃逸了，我的损失找谁"),
    ("traffic", "借车给朋友出了事故，车主有没有责任"),
    ("traffic", "酒驾撞伤人会判刑吗"),
    ("labour", "公司没有理由辞退我，能拿到赔偿吗"),
    ("labour", "试用期被开除，有没有经济补偿"),
    ("labour", "上班路上出车祸算不算工伤"),
    ("labour", "辞职后公司不发最后一个月工资，合法吗"),
    ("labour", "没签劳动合同，能要双倍工资吗"),
    ("labour", "公司拖欠工资，去哪里申请仲裁"),
    ("labour", "加班不给加班费，怎么维权"),
    ("demolition", "拆迁补偿太低，可以不签协议吗"),
    ("demolition", "房子没谈好就被强拆了，能告谁"),
    ("demolition", "征地补偿款村里不给分，怎么办"),
    ("demolition", "拆迁时租户能拿到补偿吗"),
    ("demolition", "宅基地上的老房子拆迁，户口迁出去的子女能分吗"),
    ("contract_debt", "朋友借钱不还，没写欠条能起诉吗"),
    ("contract_debt", "欠款过了五年，还能要回来吗"),
    ("contract_debt", "给别人做了担保，要替他还钱吗"),
    ("contract_debt", "借条上没写还款日期，什么时候能起诉"),
    ("contract_debt", "微信转账的借款，算不算证据"),
    ("contract_debt", "对方不履行合同，违约金怎么算"),
    ("contract_debt", "定金和订金有什么区别，能退吗"),
    ("criminal", "打架把对方打成轻伤，要坐牢吗"),
    ("criminal", "被网上刷单骗了钱，能立案吗"),
    ("criminal", "盗窃两千块钱会判多久"),
    ("marriage_family", "离婚时对方欠的债，我要一起还吗"),
    ("marriage_family", "父母的房子没有遗嘱，出嫁的女儿能继承吗"),
    ("marriage_family", "孩子的抚养费一个月该给多少"),
    ("housing_land", "房东提前收回房子，要赔违约金吗"),
    ("housing_land", "买的房子漏水，开发商要负责修吗"),
    ("consumer", "买到假货，能要求退一赔三吗"),
    ("consumer", "预付卡商家跑路了，钱能要回来吗"),
    ("medical", "手术出了问题，医院要承担什么责任"),
    ("medical", "医疗事故的赔偿标准是怎样的"),
    ("administrative", "被罚款了不服，怎么申请复议"),
    ("business", "合伙人退伙，之前的债务谁承担"),
]

SHORT_FRAMES = ["{s}？", "请问{s}？", "{s}"]

# A second round of short legal questions (issue 17, next round), written for this project on
# 2026-12-07 the way callers say them in one breath (咋办, 能告吗, 有没有责任, 找谁), without a
# question word at times; about liability, compensation, dismissal, debts and demolition first,
# then the other categories. Used as they are and with the same two short frames.
SHORT_QUESTIONS_2 = [
    # liability and compensation for injuries
    ("injury", "小区里的树枝掉下来砸到我的车了，找谁赔"),
    ("injury", "孩子在游乐场玩滑梯摔骨折了，游乐场有没有责任"),
    ("injury", "装修工人在我家干活从梯子上摔下来，我要赔钱吗"),
    ("injury", "在健身房被器械砸伤了，健身房应该赔多少"),
    ("injury", "被人打了一巴掌，耳朵听不见了，能要求赔偿吗"),
    ("injury", "网上有人造谣说我坏话，我能告他吗"),
    ("injury", "邻居家的猫把我孩子抓伤了，打疫苗的钱谁出"),
    ("injury", "在人行道上被共享单车撞倒了，骑车的人要负全责吗"),
    ("injury", "去朋友家做客被他家的狗咬了，医药费能让他出吗"),
    ("injury", "公司团建爬山摔伤了，公司要不要负责"),
    ("injury", "路上井盖没盖好我掉进去受伤了，该找谁赔偿"),
    ("injury", "孩子在幼儿园被老师推倒磕破了头，幼儿园怎么赔"),
    # traffic
    ("traffic", "停在路边的车被人刮了，对方跑了咋办"),
    ("traffic", "坐网约车出了车祸受伤，平台要赔吗"),
    ("traffic", "电动车和行人撞了，各负一半责任合理吗"),
    ("traffic", "交警认定我次责，对方的医药费我要出多少"),
    ("traffic", "无证驾驶撞了人，保险公司还赔不赔"),
    ("traffic", "车借给别人开被拍了违章，扣分算谁的"),
    # labour: dismissal, wages, injuries at work
    ("labour", "怀孕了公司让我主动辞职，这样合法吗"),
    ("labour", "干了三年被公司裁掉，补偿金怎么算"),
    ("labour", "老板说我不适合岗位直接让我走人，我能要赔偿吗"),
    ("labour", "工地老板欠了我半年工钱，去哪里告他"),
    ("labour", "在工地上干活手指被机器压断了，老板只给两千块，够吗"),
    ("labour", "公司不给交社保，我辞职能要补偿吗"),
    ("labour", "被公司调到外地上班我不同意，公司说算我旷工，合法吗"),
    ("labour", "离职的时候公司扣着押金不退，怎么要回来"),
    ("labour", "劳务派遣工受了工伤，该找派遣公司还是用工单位"),
    ("labour", "国家法定节假日加班，工资应该怎么算"),
    ("labour", "公司把我辞退了还不给开离职证明，咋办"),
    ("labour", "竞业协议签了没给补偿，还有效吗"),
    # debts and contracts
    ("contract_debt", "借给亲戚十万块，他现在不承认了，咋办"),
    ("contract_debt", "欠条被我弄丢了，钱还能要回来吗"),
    ("contract_debt", "对方借钱的时候说好了利息三分，合法吗"),
    ("contract_debt", "老公背着我在外面借了钱，我要还吗"),
    ("contract_debt", "法院判了对方还钱，他一直拖着不还，能申请强制执行吗"),
    ("contract_debt", "网贷逾期了，催收天天打电话给我家人，合法吗"),
    ("contract_debt", "装修公司收了钱一直不开工，能要求退钱吗"),
    ("contract_debt", "合同上盖的是假章，合同还有效吗"),
    ("contract_debt", "朋友拿我的身份证贷了款，我要替他还吗"),
    ("contract_debt", "卖给别人的货对方一直不付货款，超过三年还能起诉吗"),
    ("contract_debt", "担保人在借款人跑了以后要承担多少"),
    # demolition and land
    ("demolition", "拆迁的时候房子是爷爷的名字，孙子能分到补偿吗"),
    ("demolition", "村里征地不公示补偿标准，我们能怎么办"),
    ("demolition", "签了拆迁协议，安置房一直不交付，能要违约金吗"),
    ("demolition", "违建被拆了有没有补偿"),
    ("demolition", "老宅拆迁款兄弟几个怎么分才合法"),
    ("demolition", "过渡费停发了，拆迁办说没钱了，能告他们吗"),
    ("demolition", "征收决定出来以后多久可以申请行政复议"),
    ("housing_land", "宅基地被邻居多占了半米，能要回来吗"),
    ("housing_land", "买的二手房过户后发现是凶宅，能退吗"),
    ("housing_land", "租房合同没到期，房东要卖房让我搬走，能赔我吗"),
    ("housing_land", "承包的地被村里收回去了，没给钱，合法吗"),
    ("housing_land", "父母名下的房子只写了我哥的名字，我有份吗"),
    # family
    ("marriage_family", "离婚后孩子跟我，对方不给抚养费咋办"),
    ("marriage_family", "结婚前男方买的房子，婚后一起还贷，离婚怎么分"),
    ("marriage_family", "彩礼给了二十万，没领证就分手了，能要回来吗"),
    ("marriage_family", "老人再婚，子女能不能反对"),
    ("marriage_family", "父亲去世了没留遗嘱，后妈能分多少遗产"),
    ("marriage_family", "儿子不赡养老人，老人能起诉他吗"),
    ("marriage_family", "离婚的时候对方藏了财产，发现以后还能再分吗"),
    ("marriage_family", "前夫不让我看孩子，我该怎么办"),
    # consumer, medical, property, business, criminal, administrative
    ("consumer", "健身房倒闭了，办的年卡找谁退"),
    ("consumer", "网上买的手机是翻新机，商家不认账，咋办"),
    ("consumer", "在餐馆吃出了虫子，可以要求赔偿多少"),
    ("consumer", "报的旅游团被强制购物，能投诉退钱吗"),
    ("medical", "在小诊所打针后腿瘸了，诊所要负什么责任"),
    ("medical", "医院把病历弄丢了，我能告医院吗"),
    ("medical", "整容失败了，医院只愿意退一半钱，合理吗"),
    ("property_mgmt", "物业没看好小区，电动车被偷了，物业要赔吗"),
    ("property_mgmt", "没交物业费，物业就给我家停水，合法吗"),
    ("property_mgmt", "电梯坏了把人关在里面受了惊吓，物业有没有责任"),
    ("neighbour", "楼上漏水把我家天花板泡坏了，楼上不肯赔，能起诉吗"),
    ("neighbour", "邻居在公共楼道装了摄像头对着我家门，违法吗"),
    ("environment", "工厂排的废水把我家鱼塘的鱼都毒死了，能要多少赔偿"),
    ("business", "公司注销了，欠我的货款还能找股东要吗"),
    ("business", "和朋友合伙开店，他偷偷把店转让了，我能告他吗"),
    ("criminal", "家里人被拘留了，多久能见到律师"),
    ("criminal", "喝酒开车被抓，会不会留案底"),
    ("criminal", "被人骗了五万块，报警了一直没结果，还能怎么办"),
    ("criminal", "未成年人打伤了人，家长要承担什么责任"),
    ("administrative", "开车被扣了驾照，我觉得处罚不对，能告交警队吗"),
    ("administrative", "城管把我的三轮车没收了，能要回来吗"),
    ("administrative", "申请信息公开，政府一直不答复，怎么办"),
]


def short_rows():
    for category, s in SHORT_QUESTIONS + SHORT_QUESTIONS_2:
        for frame in SHORT_FRAMES:
            yield {
                "text": frame.format(s=s),
                "service": "legal_consultation",
                "category": category,
            }


def main():
    out = "data/written/tickets.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for i, r in enumerate(list(rows()) + list(short_rows())):
            r = {"id": f"written-{i:05d}", **r}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(out)


if __name__ == "__main__":
    main()

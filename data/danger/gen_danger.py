#!/usr/bin/env python3
"""The project's own labelled danger set (issue 17), written by hotline-gateway's engineers.

Every text below was written by hand for this project, the way a 12345 / 110 / 12348 operator
types a caller's words, from what such calls are about; none is copied from any data set, and the
rows were written before the warning rules were changed for issue 17 (commit history shows the
order). Kinds:

  threat            threats of violence against a person (what is threatened, against whom)
  self_harm         self-harm or suicide, said directly or indirectly
  group_action      people acting together: 5 to 19 (red) or 20 and more (orange), however said
  vulnerable        harm to or neglect of old people, children, pregnant women, disabled people
  repeated_quarrel  a quarrel that keeps coming back (yellow)
  harmless          ordinary matters that use frightening words in their everyday senses
                    (haggling 砍价/杀价, shop sales 跳楼价, cooking 杀鱼, sport 打爆, idioms, negation)

`level` is the lowest warning level the ticket should get on the scale of config/default.toml
(orange > red > yellow > none); a harmless ticket should stay at `none`.

`split` is fixed by the row number (every other row): rules may be improved by reading the
`tune` rows' results; only aggregate figures are ever read for the `held` rows, which is what
`hotline-gateway eval --danger` reports separately. A tenth of the rows are given in traditional
characters (`script`), converted with OpenCC's table (data/opencc) read backwards.

Run: python3 data/danger/gen_danger.py   (writes data/danger/danger.jsonl)
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

ROWS = [
    # --- threats of violence ---------------------------------------------------------------
    ("threat", "red", "来电人称前夫喝了酒就打电话来，说要拿刀过来把她捅了"),
    ("threat", "red", "邻居因为停车位跟我吵，放话说晚上要弄死我全家"),
    ("threat", "red", "他说再不还钱就卸我一条腿"),
    ("threat", "red", "包工头说谁再去劳动局告他，就找人把谁打残"),
    ("threat", "red", "对方说要让我见血，还说知道我孩子在哪个学校上学"),
    ("threat", "red", "来电人反映，债主天天上门，说要放把火把她家店烧了"),
    ("threat", "red", "丈夫拿着菜刀追着我砍，我跑到邻居家躲起来了"),
    ("threat", "red", "他在微信上发语音说要找几个人来收拾我"),
    ("threat", "red", "前男友说我要是敢分手，就往我脸上泼硫酸"),
    ("threat", "red", "村里有人扬言，谁敢在那块地上盖房子就打断谁的腿"),
    ("threat", "red", "对方当着民警的面说，出了派出所就要我的命"),
    ("threat", "red", "女婿说要开车撞死我们老两口"),
    ("threat", "red", "那个租客拿着棍子在门口等我，说今天不退押金就跟我拼了"),
    ("threat", "red", "老板说谁敢去仲裁，他就叫人到谁老家去闹，还要打人"),
    ("threat", "red", "邻居说要在我家井里下毒"),
    ("threat", "red", "他把我堵在楼道里掐我脖子，说下次就没这么便宜了"),
    ("threat", "red", "儿子吸毒后向父母要钱，不给就说要把房子点了"),
    ("threat", "red", "对方带着铁锹冲到我家地里，说谁拦着就拍死谁"),
    ("threat", "red", "来电人称丈夫威胁说离婚就把孩子带走，让她一辈子见不到，还说要杀了她"),
    ("threat", "red", "装修队的人说再不给尾款就把我家砸了，晚上还来敲门"),
    ("threat", "red", "他在家族群里说要找人废了我"),
    ("threat", "red", "前夫说要跟我同归于尽，手里拿着一瓶汽油"),
    # --- self-harm -------------------------------------------------------------------------
    ("self_harm", "red", "来电人说工资讨不回来，活着也没意思了，今晚就从楼顶跳下去"),
    ("self_harm", "red", "她说孩子被前夫抢走了，不想再活了"),
    ("self_harm", "red", "老人说儿女都不管他，准备把攒下的药一次吃完"),
    ("self_harm", "red", "他站在桥边打电话，说拿不到赔偿就跳下去"),
    ("self_harm", "red", "来电人称已经写好了遗书，房子被拆了也没地方去"),
    ("self_harm", "red", "丈夫说要是我离婚，他就死在我面前"),
    ("self_harm", "red", "女儿被同学欺负后在手腕上划了好几道口子"),
    ("self_harm", "red", "他说这个月再不发工资，就在老板办公室门口喝药"),
    ("self_harm", "red", "来电人情绪低落，反复说自己是家里的累赘，想一了百了"),
    ("self_harm", "red", "她说欠了网贷还不上，准备烧炭"),
    ("self_harm", "red", "工人爬上塔吊，说不给钱就不下来，要从上面跳"),
    ("self_harm", "red", "婆婆说我们不让她住，她就吊死在我们家门口"),
    ("self_harm", "red", "来电人说已经买好了老鼠药，这是最后一次打电话"),
    ("self_harm", "red", "他说被骗光了积蓄，对不起家里人，不如死了算了"),
    ("self_harm", "red", "孩子说考不好回家会被打，想从学校楼上跳下去"),
    ("self_harm", "red", "来电人称丈夫把自己锁在车库里开着车，说不想活了"),
    ("self_harm", "red", "她说这日子过不下去了，要带着孩子一起走"),
    # --- group action ----------------------------------------------------------------------
    ("group_action", "orange", "工地老板拖欠农民工工资两个月，三十多个工人今天围在项目部门口要钱"),
    ("group_action", "orange", "全村的人都到镇政府门口坐着，说征地款没给够"),
    ("group_action", "orange", "一百来号业主在售楼部拉着横幅讨说法"),
    ("group_action", "orange", "几十个家长堵在学校门口，要校长出来给个说法"),
    ("group_action", "red", "十几个人要去老板家里讨薪"),
    ("group_action", "red", "七八个村民拿着锄头把修路的挖掘机拦住了"),
    ("group_action", "red", "一群人围着物业办公室，不让物业经理出来"),
    ("group_action", "red", "对方叫了一帮人过来，把我们的店门堵了"),
    ("group_action", "orange", "厂里两百多名职工停工，在厂门口要求补发工资"),
    ("group_action", "red", "他们家兄弟五个带着人来我家地里闹"),
    ("group_action", "orange", "全体租户明天要一起去市里上访"),
    ("group_action", "red", "六个工人爬到楼顶上，说不结清工钱就不下来"),
    ("group_action", "orange", "小区上百户业主晚上聚在一起，准备明天去堵开发商的门"),
    ("group_action", "red", "一伙人拿着棍子冲进了我们的养殖场"),
    ("group_action", "orange", "二十来个外卖骑手在站点门口闹，说被扣了钱"),
    ("group_action", "red", "亲戚们来了十多口人，在医院走廊里闹，不让医生下班"),
    ("group_action", "orange", "好几十号人在村委会门口吵着要分红"),
    ("group_action", "red", "隔壁村来了一车人，要把我们村的水渠挖断"),
    ("group_action", "orange", "整个车间的工人都不干了，围着老板要工资"),
    ("group_action", "red", "五六个人把我堵在巷子里要钱"),
    ("group_action", "orange", "四十多户拆迁户约好了明天去区政府门口"),
    ("group_action", "red", "死者家属叫了一大帮人把厂门口堵了，要求赔钱"),
    # --- harm to vulnerable people ---------------------------------------------------------
    ("vulnerable", "yellow", "八十岁的老母亲一个人住在老房子里，三个儿子谁都不去看，也不给生活费"),
    ("vulnerable", "yellow", "邻居家的孩子经常身上青一块紫一块，晚上总听到哭声"),
    ("vulnerable", "yellow", "儿媳妇不让婆婆进门，老人在楼道里坐了一夜"),
    ("vulnerable", "yellow", "养老院的护工对瘫在床上的老人又骂又拽"),
    ("vulnerable", "yellow", "怀着孕的老婆被他推了一把，摔在地上"),
    ("vulnerable", "yellow", "继父经常不给孩子饭吃，还把孩子关在门外"),
    ("vulnerable", "yellow", "有人专门骗村里的老年人买保健品，把养老钱都骗走了"),
    ("vulnerable", "yellow", "智力有问题的弟弟被人带到工地干活，一分钱工钱都没给"),
    ("vulnerable", "yellow", "大伯把瘫痪的爷爷锁在屋里，自己出去打工了"),
    ("vulnerable", "yellow", "校门口有几个大孩子天天抢低年级学生的钱"),
    ("vulnerable", "yellow", "老人的退休金卡被儿子拿走了，老人连药都买不起"),
    ("vulnerable", "red", "后妈用烟头烫孩子的手，孩子不敢回家"),
    ("vulnerable", "yellow", "十五岁的女儿被饭店老板招去端盘子，每天干十二个小时"),
    ("vulnerable", "yellow", "残疾的哥哥被嫂子赶出来了，现在住在桥洞下面"),
    ("vulnerable", "yellow", "奶奶说孙子一要钱就推她，她腿脚不好，已经摔了两次"),
    ("vulnerable", "yellow", "孕妇在超市门口被电动车撞了，对方跑了"),
    ("vulnerable", "yellow", "三岁的孩子被托管班老师打了耳光，脸都肿了"),
    ("vulnerable", "yellow", "叔叔占了爷爷的房子，把老人撵到了牛棚里住"),
    # --- repeated quarrels -----------------------------------------------------------------
    ("repeated_quarrel", "yellow", "楼上每天半夜拖椅子，我上去说了好几次，每次都吵一架，这周又吵了"),
    ("repeated_quarrel", "yellow", "为了门口那块空地，我们两家三天两头吵，派出所都来过三回了"),
    ("repeated_quarrel", "yellow", "婆媳俩隔三差五就吵，老公夹在中间也管不了"),
    ("repeated_quarrel", "yellow", "邻居家的狗天天叫，找他说了不下十次，每次都不欢而散"),
    ("repeated_quarrel", "yellow", "为了老人的赡养费，兄弟几个一见面就吵，已经闹了两年了"),
    ("repeated_quarrel", "yellow", "对门老往楼道里堆东西，我们已经因为这个吵过很多回了"),
    ("repeated_quarrel", "yellow", "上周已经打过电话了，今天又因为漏水跟楼上吵起来了"),
    ("repeated_quarrel", "yellow", "两个村为了这条水沟年年吵，今年又开始了"),
    ("repeated_quarrel", "yellow", "同一个问题我反映了四次了，跟物业吵了好几回，还是没人解决"),
    ("repeated_quarrel", "yellow", "夫妻俩这个月已经吵了五六次，每次都摔东西"),
    ("repeated_quarrel", "yellow", "隔壁烧烤店的油烟，我们找老板理论了无数次，又吵起来了"),
    ("repeated_quarrel", "yellow", "租客和房东因为押金的事，前前后后闹了好几次了"),
    # --- harmless everyday senses ------------------------------------------------------------
    ("harmless", "none", "我在菜市场跟摊主砍价，砍下来五块钱，回家发现秤不够"),
    ("harmless", "none", "网上买的衣服说是跳楼价，收到货发现是旧的，商家不给退"),
    ("harmless", "none", "去饭店吃饭，老板当面杀鱼，结果端上来的不是那条鱼，请问怎么维权"),
    ("harmless", "none", "商场搞活动杀价杀得很厉害，买完第二天就降价了，能要求退差价吗"),
    ("harmless", "none", "孩子打游戏把对面打爆了，高兴得不行，可是充值花了三千块，能退吗"),
    ("harmless", "none", "这家理发店的办卡价格简直吓死人，办了卡又说要加钱"),
    ("harmless", "none", "装修师傅干活很拼命，但是工期拖了两个月，合同怎么算"),
    ("harmless", "none", "今天热死了，小区停电一下午也没人来修"),
    ("harmless", "none", "他没有打我，也没说要打我，就是欠钱一直不还"),
    ("harmless", "none", "对方并没有威胁我，只是合同到期不续了，押金能要回来吗"),
    ("harmless", "none", "我们村过年杀猪宰羊，邻居说我们占了他家的地方，想问怎么划界"),
    ("harmless", "none", "那部电影里杀人的镜头太多了，带孩子去看吓哭了，影院能退票吗"),
    ("harmless", "none", "球队昨晚把对手打得落花流水，球迷在路上开车鸣笛，吵得睡不着"),
    ("harmless", "none", "公司年会上老板说今年要拼个你死我活，把业绩做上去"),
    ("harmless", "none", "奶茶店的爆炸口感新品我喝了拉肚子，找谁赔"),
    ("harmless", "none", "笑死了，快递员把我的包裹送到了隔壁小区"),
    ("harmless", "none", "手机秒杀抢到一台，结果商家砍单了，说库存不足"),
    ("harmless", "none", "我家猫把鱼缸里的金鱼都吃光了，这个不是纠纷，想问宠物医院收费标准"),
    ("harmless", "none", "我妈炖汤炖得太香，邻居家的小孩天天来蹭饭，也没什么矛盾"),
    ("harmless", "none", "驾校教练说我倒车入库倒得要命，考了三次没过，学费能退一部分吗"),
    ("harmless", "none", "饿死了，外卖送了两个小时还没到，平台也不给赔"),
    ("harmless", "none", "我和朋友合伙开火锅店，他想撤资，股份怎么算"),
    ("harmless", "none", "刀具店卖的菜刀说是进口的，其实是国产贴牌，算不算欺诈"),
    ("harmless", "none", "健身教练让我往死里练，练伤了腰，健身房该不该负责"),
]


# --- Second round (issue 17, next round): written by hand for this project on 2026-12-07, before
# the warning rules were changed for them, by an engineer who wrote them as operators type a
# caller's words, not from the lexicon. `held2` rows: only aggregate figures are ever read;
# `tune2` rows: the rules may be improved by reading their results one by one.
HELD2 = [
    # threats
    ("threat", "red", "前夫发短信说让我小心点，走夜路的时候别让他碰上"),
    ("threat", "red", "讨债的人说知道我女儿在哪上幼儿园，让我自己掂量着办"),
    ("threat", "red", "邻居拎着一把菜刀站在我家门口骂，说今天非要我好看"),
    ("threat", "red", "他说要是再去他单位闹，就让我横着出去"),
    ("threat", "red", "对方在电话里说，钱不还，你这双手就别想要了"),
    ("threat", "red", "老公说我敢回娘家，就打断我的腿"),
    ("threat", "red", "包工头拍着桌子说，谁再提工钱的事就找人修理谁"),
    ("threat", "red", "那个男的一直跟踪我，还说我不跟他好，他就跟我一起死"),
    ("threat", "red", "来电人称丈夫把家里的刀藏在枕头底下，说哪天不高兴了就动手"),
    ("threat", "red", "他喝多了说要去把村主任家给烧了"),
    ("threat", "red", "表哥为了拆迁款的事，说要开车去撞他舅舅"),
    ("threat", "red", "对方说出了这个门就找人砍我"),
    ("threat", "red", "前男友在楼下等了一晚上，说见到我就要给我点颜色看看"),
    ("threat", "red", "债主带人堵着我，说三天内还不上钱就把我卖了"),
    ("threat", "red", "他说他坐过牢，不怕再进去一次，让我小心家里人"),
    ("threat", "red", "同事跟我吵完，说下班在停车场等着我，要我好看"),
    ("threat", "red", "邻居往我家门上泼了红油漆，写着再不搬走就见血"),
    ("threat", "red", "婆家的人说我要是敢把孩子带走，就让我走不出这个村"),
    # self-harm
    ("self_harm", "red", "她说实在撑不下去了，把孩子托付给我就挂了电话"),
    ("self_harm", "red", "来电人说已经在河边坐了两个小时，不知道还有没有必要回家"),
    ("self_harm", "red", "他说公司不给补偿，他就从公司楼上跳下来给大家看"),
    ("self_harm", "red", "老人说自己拖累儿女，药已经攒了一瓶了"),
    ("self_harm", "red", "我儿子把自己关在房间里不吃不喝，说活着没意思"),
    ("self_harm", "red", "她老公说要是她敢走，他就当着孩子的面喝农药"),
    ("self_harm", "red", "来电人哭着说被骗了八万块，没脸见人了，想去死"),
    ("self_harm", "red", "小伙子坐在楼顶天台边上，说老板不给钱他就不下来了"),
    ("self_harm", "red", "妻子最近总说想睡过去就不要醒了，还在网上查安眠药"),
    ("self_harm", "red", "他在朋友圈发了告别的话，电话也不接了"),
    ("self_harm", "red", "来电人称女儿手臂上有很多刀痕，说心里难受就划自己"),
    ("self_harm", "red", "欠了一屁股债，他说这条命也不要了，就当还债了"),
    ("self_harm", "red", "农民工说拿不到工钱没脸回家过年，准备从脚手架上跳下去"),
    ("self_harm", "red", "她说遗嘱已经写好了，存款都留给孩子，以后就不麻烦大家了"),
    ("self_harm", "red", "母亲说父亲要是再打她，她就去跳井"),
    ("self_harm", "red", "学生说被老师当众羞辱，不想活了，已经走到江边了"),
    # group action
    ("group_action", "red", "一大群工人堵在公司门口，说今天见不到老板就不走"),
    ("group_action", "orange", "村里的人全都去了镇上，说要拦书记的车"),
    ("group_action", "red", "家属们来了好多人，在殡仪馆门口不让火化，要医院给个说法"),
    ("group_action", "red", "小区业主约好了周末一起去售楼处拉横幅"),
    ("group_action", "orange", "整条街的商户都关了门，聚在市场管理处门口"),
    ("group_action", "orange", "二三十个外地工人在工地上打起来了"),
    ("group_action", "red", "一屋子老乡把包工头围在屋里不让走，要他结账"),
    ("group_action", "red", "一帮年轻人拿着棒球棍在烧烤摊闹事"),
    ("group_action", "red", "对方家里来了一大家子人，把我们家门口堵得严严实实"),
    ("group_action", "orange", "五十多个学员在培训机构门口要退费，把马路都堵了"),
    ("group_action", "orange", "两个村的人为了争水源在河边对上了，双方都有上百人"),
    ("group_action", "red", "车间里的工人全都停了手上的活，说不涨工资就不开工"),
    ("group_action", "red", "十来个骑手把站长围在办公室里要说法"),
    ("group_action", "red", "物业停了水，楼里的住户都下来了，围着物业经理吵"),
    ("group_action", "orange", "几十辆出租车停在市政府门口不走，司机都在车外站着"),
    ("group_action", "red", "我们整个单元的人打算明天一起去住建局门口坐着"),
    ("group_action", "red", "老家的族人召集了一批人，说要去邻村把那块坟地抢回来"),
    ("group_action", "red", "拆迁户们连着三天在工地门口拦施工车辆，人越来越多"),
    ("group_action", "red", "七个工友说明天一早去老板家楼下等他"),
    # vulnerable people
    ("vulnerable", "yellow", "楼下那家的小孩三四岁，经常一个人被关在阳台上哭到半夜"),
    ("vulnerable", "yellow", "我爸八十多了，我哥把他的存折拿走，饭也不好好给他做"),
    ("vulnerable", "yellow", "隔壁老太太一个人住，儿子来了就骂她，还抢她的低保钱"),
    ("vulnerable", "yellow", "托儿所的阿姨嫌孩子哭，用胶带把孩子的嘴封上"),
    ("vulnerable", "yellow", "弟弟是聋哑人，在厂里干了一年，老板一直不给工资还打他"),
    ("vulnerable", "yellow", "我姥爷被舅舅赶出家门，现在住在村口的棚子里"),
    ("vulnerable", "yellow", "七岁的侄子被他爸用皮带抽，背上全是印子"),
    ("vulnerable", "yellow", "保姆趁家里没人，对我瘫在床上的母亲又掐又骂"),
    ("vulnerable", "yellow", "怀孕五个月了，老公还动手打我"),
    ("vulnerable", "yellow", "班上有几个孩子天天欺负我儿子，把他的头按在厕所里"),
    ("vulnerable", "yellow", "一个老大爷被人骗着签了卖房合同，现在无家可归"),
    ("vulnerable", "yellow", "外甥女才十四岁，被人叫去KTV陪酒"),
    ("vulnerable", "yellow", "儿子儿媳把我锁在屋里，不让我出门，也不让我见别人"),
    ("vulnerable", "yellow", "精神不太正常的邻居大姐被她家里人用铁链拴在院子里"),
    ("vulnerable", "yellow", "养老院的老人身上有淤青，护工说是自己摔的"),
    ("vulnerable", "yellow", "继母不让孩子上学，天天让他在家干活，只给吃剩饭"),
    ("vulnerable", "yellow", "残疾的大伯的低保被村干部扣下了，说是替他保管"),
    # repeated quarrels
    ("repeated_quarrel", "yellow", "楼上装修的事，我们上去说了不知道多少次，每次都是吵着回来"),
    ("repeated_quarrel", "yellow", "我和前妻为了孩子见面的事，一打电话就吵，今年已经第七八回了"),
    ("repeated_quarrel", "yellow", "对门的车天天停在我家门口，为这事我们吵了一个多月了"),
    ("repeated_quarrel", "yellow", "两家为了地边那棵树，从去年吵到今年"),
    ("repeated_quarrel", "yellow", "老公每次喝了酒回来都要跟我大吵一架"),
    ("repeated_quarrel", "yellow", "和合租的室友因为卫生问题，隔几天就要闹一次"),
    ("repeated_quarrel", "yellow", "物业和业主为了停车的事天天在门口吵"),
    ("repeated_quarrel", "yellow", "父子俩为了房子的事已经翻过好几次脸了"),
    ("repeated_quarrel", "yellow", "姑嫂之间一直不和，这个月又在家里吵翻了"),
    ("repeated_quarrel", "yellow", "跟楼下的狗主人说过不下二十次了，每回都是对骂"),
    ("repeated_quarrel", "yellow", "店铺隔壁的老板老往我门口倒水，吵了又吵也没用"),
    ("repeated_quarrel", "yellow", "老两口为了给不给儿子买房，整天吵个不停"),
    ("repeated_quarrel", "yellow", "来电人称和前夫因为抚养费反反复复地吵，已经报过两次警"),
    ("repeated_quarrel", "yellow", "菜地的边界问题，两家人每年春天都要吵上一回"),
    # harmless everyday senses
    ("harmless", "none", "我在刀具店买了一套厨房刀，用了一周就生锈了，能退吗"),
    ("harmless", "none", "看了一部讲杀手的电影，影院空调坏了，能要求退票吗"),
    ("harmless", "none", "菜市场的鱼贩帮我杀鱼，多收了我十块钱处理费"),
    ("harmless", "none", "二手车商杀价太狠，说好的价格临交车又压了五千"),
    ("harmless", "none", "昨晚篮球赛我们把对方打爆了，可是球馆不给退押金"),
    ("harmless", "none", "我们家兄弟五个，想问父母的房子怎么分"),
    ("harmless", "none", "超市说跳楼价清仓，结果买到的牛奶都快过期了"),
    ("harmless", "none", "厨师培训班说包教会做红烧肉，结果三个月啥也没学会，学费能退吗"),
    ("harmless", "none", "这家店的衣服贵得要死，买回来还起球，商家不给退换"),
    ("harmless", "none", "游戏里被人砍了几十刀，账号装备也被盗了，平台不管"),
    ("harmless", "none", "屠宰场每天早上五点就开始杀猪，附近居民能投诉噪音吗"),
    ("harmless", "none", "搏击课教练说要把我们往死里练，结果课才上了两节健身房就倒闭了"),
    ("harmless", "none", "兄弟几个合伙买了一辆货车，现在想散伙，车怎么分"),
    ("harmless", "none", "我儿子在学校足球比赛中被对方踢伤了脚踝，谁负责"),
    ("harmless", "none", "饭店的水煮鱼辣死人了，我们要求退菜老板不肯"),
    ("harmless", "none", "在网上买的水果刀寄来就是坏的，客服一直不回复"),
    ("harmless", "none", "村里办丧事放鞭炮放到半夜，吵得人睡不着"),
    ("harmless", "none", "朋友开了一家武术馆，教孩子耍刀耍棍，想问办证要什么手续"),
    ("harmless", "none", "公司砍了我们的年终奖，说是今年效益不好"),
    ("harmless", "none", "我们五个同学一起报名驾校，驾校收了钱一直不安排考试"),
]

TUNE2 = [
    ("threat", "red", "他说要是我报警，就让我全家都不得安生"),
    ("threat", "red", "债主在我家门口放话，说下次来就不是说说而已了"),
    ("threat", "red", "前夫提着一把斧子在我单位楼下转"),
    ("threat", "red", "对方说要把我儿子从学校接走，让我再也见不到"),
    ("threat", "red", "他说再敢跟别的男人说话就划花我的脸"),
    ("threat", "red", "有人打电话说知道我住哪，让我晚上睡觉小心点"),
    ("self_harm", "red", "她说真的累了，想去一个没人认识的地方永远睡下去"),
    ("self_harm", "red", "来电人称已经在出租屋里准备好了绳子"),
    ("self_harm", "red", "他说钱也没了家也没了，不想再拖累别人了"),
    ("self_harm", "red", "老父亲说再逼他搬走，他就死在老房子里"),
    ("self_harm", "red", "女孩说被网上的人骗了，站在窗台上给我们打电话"),
    ("group_action", "red", "一帮工友今天在项目部门口等着，说老板不露面就不走"),
    ("group_action", "red", "村民们都围在施工现场，不让挖掘机进地"),
    ("group_action", "red", "好几个车间的人一起罢工了"),
    ("group_action", "orange", "半个村子的人都跑到镇政府去了"),
    ("group_action", "red", "业主们约好明天穿统一的衣服去售楼处"),
    ("group_action", "orange", "四五十个家长在教育局门口等说法"),
    ("vulnerable", "yellow", "邻居家男的经常打他那个八岁的儿子，孩子晚上哭得整栋楼都听得到"),
    ("vulnerable", "yellow", "我妈七十多了，被我弟赶出家门，在亲戚家借住"),
    ("vulnerable", "yellow", "孙子把奶奶的养老钱全拿去打游戏了，奶奶现在连饭都吃不上"),
    ("vulnerable", "yellow", "聋哑人被骗到砖厂干活，不给钱还不让走"),
    ("vulnerable", "yellow", "孕妇在医院排队的时候被人推倒了"),
    ("repeated_quarrel", "yellow", "跟楼下为了漏水的事吵了不下五回了"),
    ("repeated_quarrel", "yellow", "夫妻俩天天为了孩子的教育吵架"),
    ("repeated_quarrel", "yellow", "我跟邻居为了车位的事又吵起来了，这都第四次了"),
    ("repeated_quarrel", "yellow", "两兄弟为了老宅的事，每年过年都要吵"),
    ("harmless", "none", "我们饭店杀鸡杀鱼的下水被环卫拉走了，还要另外收费吗"),
    ("harmless", "none", "他在学校运动会上拼了命跑，拿了第一，学校的奖金一直没发"),
    ("harmless", "none", "二手房砍价砍了十万，中介费怎么算"),
    ("harmless", "none", "这部电视剧打打杀杀的太多，小孩看了害怕，能投诉吗"),
    ("harmless", "none", "刀削面馆的老板多收了我们的钱"),
    ("harmless", "none", "兄弟三个一起出钱给父母盖了房，现在房产证写谁的名字"),
]


# A third round (`tune3`), written while the rules were being changed, to find where they fail
# to generalise; their results were read one by one, so they are tuning rows, not held rows.
TUNE3 = [
    ("group_action", "red", "工地上的人都不干活了，围着包工头要钱"),
    ("group_action", "red", "那家人喊来一帮亲戚，把我们店门口堵上了"),
    ("group_action", "orange", "几十号村民扛着锄头去了邻村"),
    ("group_action", "red", "业主们把售楼处的玻璃门砸了"),
    ("group_action", "orange", "厂里几百个工人今天都没上班，在门口坐着"),
    ("group_action", "red", "对方来了一车人，手里都拿着家伙"),
    ("group_action", "red", "七八个家属抬着花圈堵在医院大门口"),
    ("group_action", "orange", "整个村的人都出来拦挖掘机了"),
    ("group_action", "red", "一伙外地人在村口跟我们的人推来推去"),
    ("group_action", "red", "十多个租户晚上一起去找房东要押金"),
    ("threat", "red", "他说要让我在这个城市待不下去，还要找人打我"),
    ("threat", "red", "对方扬言再看到我就弄我"),
    ("threat", "red", "他拿着一根铁棍在楼下喊我的名字"),
    ("threat", "red", "前夫发微信说，不复婚就让我们母子俩都别想活"),
    ("threat", "red", "讨债的说再不还钱就去我孩子学校找他"),
    ("self_harm", "red", "他说这次真的不想活下去了，药都准备好了"),
    ("self_harm", "red", "来电人说要从单位楼顶跳下去，让老板看看"),
    ("self_harm", "red", "她在电话里一直哭，说死了就解脱了"),
    ("self_harm", "red", "老人说儿子不管他，他就绝食"),
    ("vulnerable", "yellow", "隔壁的小孩经常被他爸打，哭得很惨"),
    ("vulnerable", "yellow", "我奶奶八十多岁了，被叔叔关在小屋里不给出来"),
    ("vulnerable", "yellow", "残疾人被工头骗去干活，工资一分没拿到"),
    ("vulnerable", "yellow", "老人的房子被女儿骗去过户了，现在没地方住"),
    ("repeated_quarrel", "yellow", "我们跟隔壁为了排水沟的事吵了好多年"),
    ("repeated_quarrel", "yellow", "夫妻两个三天两头打架，孩子吓得不敢回家"),
    ("repeated_quarrel", "yellow", "房东和租客为了水电费隔三岔五吵一次"),
    ("harmless", "none", "健身房的拳击课教练说今天要把我们练趴下，结果他自己没来"),
    ("harmless", "none", "菜刀用了一个月就卷刃了，能找商家换吗"),
    ("harmless", "none", "看球赛的时候球迷们都在喊杀，邻居说太吵了"),
    ("harmless", "none", "我们兄弟几个一起给老爸过八十大寿，饭店多收了钱"),
    ("harmless", "none", "这部电视剧里有人跳楼的情节，孩子看了害怕"),
    ("harmless", "none", "超市杀鱼的师傅把鱼弄错了，少了两斤"),
    ("harmless", "none", "孩子打游戏充了五千块钱，能退吗"),
    ("harmless", "none", "老师说要教训一下不写作业的学生，家长们都同意了"),
    ("harmless", "none", "他说要收拾他的东西搬走，押金不退"),
    ("harmless", "none", "老板说要整他一下，扣了他半个月绩效，合法吗"),
    ("harmless", "none", "过年的时候家里的人都回来了，房子住不下，想问宅基地能不能再批"),
    ("harmless", "none", "工人拿着工具在楼下修水管，声音很大"),
    ("harmless", "none", "我爸说要教训我弟弟，不让他出去玩"),
    ("harmless", "none", "小区的人都拿着快递在门口排队"),
    ("harmless", "none", "我们几个朋友一起去吃饭，被饭店宰了一刀，一顿饭两千块"),
    ("harmless", "none", "小孩被狗吓到了，狗主人说没咬到不用管"),
    ("harmless", "none", "他说公司不行了，想解脱出来自己干"),
    ("harmless", "none", "小孩被蚊子咬得全是包，小区绿化带没人打药"),
    ("harmless", "none", "老人被电动车刮倒了，对方赔了钱，还能再要吗"),
    ("harmless", "none", "孩子被学校要求买校服，贵得离谱"),
    ("harmless", "none", "他说如果再不发工资，就去劳动局告老板"),
    ("harmless", "none", "二十多个家长拿着孩子的作业去学校问老师"),
    ("harmless", "none", "楼上的人都在跳绳，吵得睡不着"),
]


# A fourth round (`held3`), written by hand at the end, after the rules were final and before
# they were run on these rows, in operators' words (报警人称, 来电人反映, 民警到场后). Only
# aggregate figures are read: an estimate of how the final rules do on words they were not fit to.
HELD3 = [
    ("threat", "red", "报警人称前男友多次到其单位纠缠，今天在门口说再不见他就让她好看"),
    ("threat", "red", "来电人反映，邻居因为宅基地的事拿着镰刀在她家门口转了一上午，嘴里骂骂咧咧"),
    ("threat", "red", "民警到场后了解到，双方因车位发生争执，男方称要回家拿刀过来"),
    ("threat", "red", "他老公喝了酒就说要掐死她，孩子都吓哭了"),
    ("threat", "red", "讨要工钱时包工头说再来闹就叫人把他腿打折"),
    ("threat", "red", "对方在电话里说知道我每天几点下班，让我走路注意点"),
    ("threat", "red", "房东带了几个人来，说今天不搬就把东西连人一起扔出去"),
    ("threat", "red", "来电人称前妻的哥哥放出话来，见他一次打他一次"),
    ("self_harm", "red", "来电人称自己得了重病又没钱治，已经写好了信，准备今晚走"),
    ("self_harm", "red", "她说丈夫天天打她，她实在受不了，想从阳台跳下去一了百了"),
    ("self_harm", "red", "小伙子在电话里说公司欠薪三个月，自己已经站在江边了"),
    ("self_harm", "red", "老人说儿女不孝顺，活着也是受罪，不如喝药死了"),
    ("self_harm", "red", "学生家长反映孩子在日记里写不想再活下去"),
    ("self_harm", "red", "来电人反复说自己是个废人，对不起所有人，已经买了一瓶敌敌畏"),
    ("group_action", "red", "报警人称小区门口聚着一大帮人，拉着横幅要开发商退钱"),
    ("group_action", "orange", "来电人反映，村里几十户人家的人都堵在高速路口，要求补偿"),
    ("group_action", "red", "一伙人开着几辆面包车来到工地，下车就动手砸东西"),
    ("group_action", "red", "十几个工友把项目经理的车围住了，不给钱不让走"),
    ("group_action", "orange", "上百名业主聚集在区政府门口，要求解决延期交房"),
    ("group_action", "red", "对方村里来了好些人，扛着铁锹要把路挖断"),
    ("vulnerable", "yellow", "来电人称邻居家的老太太经常被儿媳妇骂，饭也不给吃饱"),
    ("vulnerable", "yellow", "有个智力有问题的小伙子在砖厂干了两年，一分钱没拿到，还经常挨打"),
    ("vulnerable", "yellow", "奶奶说孙子把她的低保卡拿走了，她现在连药都买不了"),
    ("vulnerable", "yellow", "孕妇在排队时跟人起了争执，被推了一把摔在地上"),
    ("vulnerable", "yellow", "小学生放学路上经常被几个初中生拦住要钱"),
    ("vulnerable", "yellow", "瘫痪在床的老人，子女都在外地，没人照顾，身上都长褥疮了"),
    ("repeated_quarrel", "yellow", "楼上楼下为了漏水的事已经吵了大半年，这周又吵起来了"),
    ("repeated_quarrel", "yellow", "两口子三天两头吵架，邻居说隔着墙都能听见摔东西"),
    ("repeated_quarrel", "yellow", "两家为了宅基地边界的事，每次见面都要吵一架"),
    ("repeated_quarrel", "yellow", "跟合伙人因为分账的事吵了好几次了，昨天差点动手"),
    ("harmless", "none", "在网上买了一把折叠刀，寄来的是坏的，卖家不给退"),
    ("harmless", "none", "小区里的人都说新来的保安很负责，就是物业费又涨了"),
    ("harmless", "none", "孩子在学校运动会上跑步摔了一跤，学校的保险能报吗"),
    ("harmless", "none", "单位组织打羽毛球比赛，我把腰扭了，算不算工伤"),
    ("harmless", "none", "菜市场的肉摊老板剁肉的时候少称了二两"),
    ("harmless", "none", "我们五个人一起去饭店吃饭，服务员把菜上错了还不承认"),
    ("harmless", "none", "那个主播在直播里说要把价格打下来，结果买到的是假货"),
    ("harmless", "none", "邻居家的狗天天晚上叫，吵得我们睡不着，说了也没用"),
    ("harmless", "none", "老公说这个月要拼命加班还房贷，我想问公积金能不能提出来"),
    ("harmless", "none", "电影院放恐怖片的时候有人在里面抽烟，工作人员不管"),
]


def back_table():
    back = {}
    with open(os.path.join(HERE, "..", "opencc", "TSCharacters.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "\t" not in line:
                continue
            k, v = line.rstrip("\n").split("\t", 1)
            v = v.split(" ")[0]
            if k != v and len(k) == 1 and len(v) == 1:
                back.setdefault(v, k)
    return back

def main():
    back = back_table()
    sources = ["12345", "110", "12348"]
    out = []
    for i, (kind, level, text) in enumerate(ROWS):
        script = "simplified"
        if i % 20 in (3, 16):
            text = "".join(back.get(c, c) for c in text)
            script = "traditional"
        out.append({
            "id": f"danger-{i:03d}",
            "text": text,
            "kind": kind,
            "level": level,
            "source": sources[i % 3],
            "split": "tune" if i % 2 == 0 else "held",
            "script": script,
            "written_by": "hotline-gateway engineers",
        })
    for split, rows in (("held2", HELD2), ("tune2", TUNE2), ("tune3", TUNE3), ("held3", HELD3)):
        for i, (kind, level, text) in enumerate(rows):
            script = "simplified"
            if i % 10 == 4:
                text = "".join(back.get(c, c) for c in text)
                script = "traditional"
            out.append({
                "id": f"danger2-{split[0]}{i:03d}",
                "text": text,
                "kind": kind,
                "level": level,
                "source": sources[i % 3],
                "split": split,
                "script": script,
                "written_by": "hotline-gateway engineers",
            })
    with open(os.path.join(HERE, "danger.jsonl"), "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    kinds = {}
    for r in out:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(len(out), "rows", kinds, sum(r["script"] == "traditional" for r in out), "traditional")

if __name__ == "__main__":
    main()

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
    with open(os.path.join(HERE, "danger.jsonl"), "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    kinds = {}
    for r in out:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(len(out), "rows", kinds, sum(r["script"] == "traditional" for r in out), "traditional")

if __name__ == "__main__":
    main()

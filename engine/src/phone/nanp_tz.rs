//! NANP (+1) area code → IANA time zone.
//!
//! Covers the geographic area codes of the US states, DC and territories,
//! Canada, and the Caribbean/Pacific NANP countries. Non-geographic codes
//! (toll-free 8XX, 500/52X personal, 600/622, 700, 710, 900) are deliberately
//! absent and map to `None`.
//!
//! Area codes whose territory is split across zones are mapped to the zone
//! where the majority of the code's population lives:
//!
//! | code(s)   | where                      | split                                        | chosen              |
//! |-----------|----------------------------|----------------------------------------------|---------------------|
//! | 850, 448  | Florida panhandle          | Pensacola/Panama City Central, Tallahassee Eastern | America/Chicago |
//! | 219       | NW Indiana                 | Lake/Porter Central, a few counties Eastern  | America/Chicago     |
//! | 812, 930  | southern Indiana           | Evansville area Central, rest Eastern        | America/Indiana/Indianapolis |
//! | 574       | northern Indiana           | Starke County Central, rest Eastern          | America/Indiana/Indianapolis |
//! | 270, 364  | western Kentucky           | mostly Central, a few counties Eastern       | America/Chicago     |
//! | 606       | eastern Kentucky           | Eastern (a sliver Central)                   | America/New_York    |
//! | 423       | eastern Tennessee          | Eastern (a few counties Central)             | America/New_York    |
//! | 931       | middle Tennessee           | mostly Central, a few counties Eastern       | America/Chicago     |
//! | 906       | Michigan Upper Peninsula   | 4 counties Central, rest Eastern             | America/Detroit     |
//! | 334, 483  | SE Alabama                 | Phenix City observes Eastern informally      | America/Chicago     |
//! | 229       | SW Georgia                 | Eastern                                      | America/New_York    |
//! | 432       | West Texas                 | Midland/Odessa Central, Hudspeth/Culberson Mountain | America/Chicago |
//! | 620, 785  | Kansas                     | 4 western counties Mountain                  | America/Chicago     |
//! | 308       | western Nebraska           | Panhandle Mountain, Grand Island/Kearney Central | America/Chicago |
//! | 701       | North Dakota               | SW corner Mountain                           | America/Chicago     |
//! | 605       | South Dakota               | West River (Rapid City) Mountain, east Central | America/Chicago   |
//! | 541, 458  | Oregon                     | Malheur County Mountain                      | America/Los_Angeles |
//! | 208, 986  | Idaho                      | Panhandle Pacific, south (Boise) Mountain    | America/Boise       |
//! | 775       | Nevada                     | West Wendover Mountain                       | America/Los_Angeles |
//! | 928       | northern Arizona           | Navajo Nation observes DST                   | America/Phoenix     |
//! | 907       | Alaska                     | Aleutians west of 169°30′W Hawaii–Aleutian   | America/Anchorage   |
//! | 807       | NW Ontario                 | Thunder Bay Eastern, Kenora/Rainy River Central | America/Toronto  |
//! | 418, 581, 367 | eastern Quebec         | Magdalen Islands Atlantic                    | America/Toronto     |
//! | 250, 778, 236, 672, 257 | British Columbia | East Kootenay Mountain, Peace River no DST | America/Vancouver   |
//! | 306, 639, 474 | Saskatchewan           | Lloydminster on Alberta time                 | America/Regina      |
//! | 709, 879  | Newfoundland and Labrador  | most of Labrador Atlantic                    | America/St_Johns    |
//! | 867       | Yukon, NWT, Nunavut        | Yukon permanent MST, NWT Mountain, Nunavut Eastern/Central/Mountain; Mountain-with-DST (NWT + Kitikmeot) is the largest group | America/Edmonton |

const NEW_YORK: &str = "America/New_York";
const DETROIT: &str = "America/Detroit";
const INDIANAPOLIS: &str = "America/Indiana/Indianapolis";
const CHICAGO: &str = "America/Chicago";
const DENVER: &str = "America/Denver";
const BOISE: &str = "America/Boise";
const PHOENIX: &str = "America/Phoenix";
const LOS_ANGELES: &str = "America/Los_Angeles";
const ANCHORAGE: &str = "America/Anchorage";
const HONOLULU: &str = "Pacific/Honolulu";

/// (region, zone, area codes). Each area code appears exactly once
/// (checked by a test).
pub(super) const NANP_AREA_CODES: &[(&str, &str, &[u16])] = &[
    // ---- United States ----
    ("AL", CHICAGO, &[205, 251, 256, 334, 483, 659, 938]),
    ("AK", ANCHORAGE, &[907]),
    ("AZ", PHOENIX, &[480, 520, 602, 623, 928]),
    ("AR", CHICAGO, &[327, 479, 501, 870]),
    (
        "CA",
        LOS_ANGELES,
        &[
            209, 213, 279, 310, 323, 341, 350, 369, 408, 415, 424, 442, 510, 530, 559, 562, 619,
            626, 628, 650, 657, 661, 669, 707, 714, 738, 747, 760, 805, 818, 820, 831, 837, 840,
            858, 909, 916, 925, 949, 951,
        ],
    ),
    ("CO", DENVER, &[303, 719, 720, 970, 983]),
    ("CT", NEW_YORK, &[203, 475, 860, 959]),
    ("DE", NEW_YORK, &[302]),
    ("DC", NEW_YORK, &[202, 771]),
    (
        "FL",
        NEW_YORK,
        &[
            239, 305, 321, 324, 352, 386, 407, 561, 645, 656, 689, 727, 728, 754, 772, 786, 813,
            863, 904, 941, 954,
        ],
    ),
    ("FL panhandle", CHICAGO, &[448, 850]),
    (
        "GA",
        NEW_YORK,
        &[229, 404, 470, 478, 678, 706, 762, 770, 912, 943],
    ),
    ("HI", HONOLULU, &[808]),
    ("ID", BOISE, &[208, 986]),
    (
        "IL",
        CHICAGO,
        &[
            217, 224, 309, 312, 331, 447, 464, 618, 630, 708, 730, 773, 779, 815, 847, 861, 872,
        ],
    ),
    ("IN", INDIANAPOLIS, &[260, 317, 463, 574, 765, 812, 930]),
    ("IN northwest", CHICAGO, &[219]),
    ("IA", CHICAGO, &[319, 515, 563, 641, 712]),
    ("KS", CHICAGO, &[316, 620, 785, 913]),
    ("KY west", CHICAGO, &[270, 364]),
    ("KY", NEW_YORK, &[502, 606, 859]),
    ("LA", CHICAGO, &[225, 318, 337, 457, 504, 985]),
    ("ME", NEW_YORK, &[207]),
    ("MD", NEW_YORK, &[227, 240, 301, 410, 443, 667]),
    (
        "MA",
        NEW_YORK,
        &[339, 351, 413, 508, 617, 774, 781, 857, 978],
    ),
    (
        "MI",
        DETROIT,
        &[
            231, 248, 269, 313, 517, 586, 616, 679, 734, 810, 906, 947, 989,
        ],
    ),
    ("MN", CHICAGO, &[218, 320, 507, 612, 651, 763, 924, 952]),
    ("MS", CHICAGO, &[228, 601, 662, 769]),
    (
        "MO",
        CHICAGO,
        &[235, 314, 417, 557, 573, 636, 660, 816, 975],
    ),
    ("MT", DENVER, &[406]),
    ("NE", CHICAGO, &[308, 402, 531]),
    ("NV", LOS_ANGELES, &[702, 725, 775]),
    ("NH", NEW_YORK, &[603]),
    (
        "NJ",
        NEW_YORK,
        &[201, 551, 609, 640, 732, 848, 856, 862, 908, 973],
    ),
    ("NM", DENVER, &[505, 575]),
    (
        "NY",
        NEW_YORK,
        &[
            212, 315, 329, 332, 347, 363, 516, 518, 585, 607, 624, 631, 646, 680, 716, 718, 838,
            845, 914, 917, 929, 934,
        ],
    ),
    (
        "NC",
        NEW_YORK,
        &[252, 336, 472, 704, 743, 828, 910, 919, 980, 984],
    ),
    ("ND", CHICAGO, &[701]),
    (
        "OH",
        NEW_YORK,
        &[
            216, 220, 234, 283, 326, 330, 380, 419, 436, 440, 513, 567, 614, 740, 937,
        ],
    ),
    ("OK", CHICAGO, &[405, 539, 572, 580, 918]),
    ("OR", LOS_ANGELES, &[458, 503, 541, 971]),
    (
        "PA",
        NEW_YORK,
        &[
            215, 223, 267, 272, 412, 445, 484, 570, 582, 610, 717, 724, 814, 835, 878,
        ],
    ),
    ("RI", NEW_YORK, &[401]),
    ("SC", NEW_YORK, &[803, 821, 839, 843, 854, 864]),
    ("SD", CHICAGO, &[605]),
    ("TN east", NEW_YORK, &[423, 865]),
    ("TN", CHICAGO, &[615, 629, 731, 901, 931]),
    (
        "TX",
        CHICAGO,
        &[
            210, 214, 254, 281, 325, 346, 361, 409, 430, 432, 469, 512, 682, 713, 726, 737, 806,
            817, 830, 832, 903, 936, 940, 945, 956, 972, 979,
        ],
    ),
    ("TX El Paso", DENVER, &[915]),
    ("UT", DENVER, &[385, 435, 801]),
    ("VT", NEW_YORK, &[802]),
    (
        "VA",
        NEW_YORK,
        &[276, 434, 540, 571, 686, 703, 757, 804, 826, 948],
    ),
    ("WA", LOS_ANGELES, &[206, 253, 360, 425, 509, 564]),
    ("WV", NEW_YORK, &[304, 681]),
    ("WI", CHICAGO, &[262, 274, 353, 414, 534, 608, 715, 920]),
    ("WY", DENVER, &[307]),
    // ---- US territories ----
    ("AS", "Pacific/Pago_Pago", &[684]),
    ("GU", "Pacific/Guam", &[671]),
    ("MP", "Pacific/Saipan", &[670]),
    ("PR", "America/Puerto_Rico", &[787, 939]),
    ("VI", "America/St_Thomas", &[340]),
    // ---- Canada ----
    ("AB", "America/Edmonton", &[368, 403, 587, 780, 825]),
    ("BC", "America/Vancouver", &[236, 250, 257, 604, 672, 778]),
    ("MB", "America/Winnipeg", &[204, 431, 584]),
    ("NB", "America/Moncton", &[428, 506]),
    ("NL", "America/St_Johns", &[709, 879]),
    ("NS/PE", "America/Halifax", &[782, 902]),
    (
        "ON",
        "America/Toronto",
        &[
            226, 249, 289, 343, 365, 382, 387, 416, 437, 519, 548, 613, 647, 683, 705, 742, 753,
            807, 905, 942,
        ],
    ),
    (
        "QC",
        "America/Toronto",
        &[263, 354, 367, 418, 438, 450, 468, 514, 579, 581, 819, 873],
    ),
    ("SK", "America/Regina", &[306, 474, 639]),
    ("YT/NT/NU", "America/Edmonton", &[867]),
    // ---- Caribbean and Atlantic NANP countries ----
    ("AG", "America/Antigua", &[268]),
    ("AI", "America/Anguilla", &[264]),
    ("BB", "America/Barbados", &[246]),
    ("BM", "Atlantic/Bermuda", &[441]),
    ("BS", "America/Nassau", &[242]),
    ("DM", "America/Dominica", &[767]),
    ("DO", "America/Santo_Domingo", &[809, 829, 849]),
    ("GD", "America/Grenada", &[473]),
    ("JM", "America/Jamaica", &[658, 876]),
    ("KN", "America/St_Kitts", &[869]),
    ("KY", "America/Cayman", &[345]),
    ("LC", "America/St_Lucia", &[758]),
    ("MS", "America/Montserrat", &[664]),
    ("SX", "America/Lower_Princes", &[721]),
    ("TC", "America/Grand_Turk", &[649]),
    ("TT", "America/Port_of_Spain", &[868]),
    ("VC", "America/St_Vincent", &[784]),
    ("VG", "America/Tortola", &[284]),
];

/// Zone of a NANP area code (the three digits after the `+1`).
pub(super) fn zone_for_area_code(area_code: u16) -> Option<&'static str> {
    NANP_AREA_CODES
        .iter()
        .find(|(_, _, codes)| codes.contains(&area_code))
        .map(|(_, zone, _)| *zone)
}

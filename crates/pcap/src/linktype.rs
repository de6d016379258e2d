//! Link-layer header types (the `LINKTYPE_*` registry of tcpdump.org).
//!
//! A newtype over the 16-bit value stored in pcap headers and pcapng IDBs, not an enum:
//! capture files carry link types this crate has never heard of, and they must pass
//! through import and export untouched. Names follow libpcap's
//! `pcap_datalink_val_to_name()` (`EN10MB`, not `ETHERNET`), so that what wirecap prints
//! matches what `tcpdump -r` prints.

use std::fmt;

/// A `LINKTYPE_*` value as stored in a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: Self = Self(0);
    pub const ETHERNET: Self = Self(1);
    pub const AX25: Self = Self(3);
    pub const IEEE802_5: Self = Self(6);
    pub const ARCNET_BSD: Self = Self(7);
    pub const SLIP: Self = Self(8);
    pub const PPP: Self = Self(9);
    pub const FDDI: Self = Self(10);
    pub const PPP_HDLC: Self = Self(50);
    pub const PPP_ETHER: Self = Self(51);
    pub const ATM_RFC1483: Self = Self(100);
    pub const RAW: Self = Self(101);
    pub const C_HDLC: Self = Self(104);
    pub const IEEE802_11: Self = Self(105);
    pub const FRELAY: Self = Self(107);
    pub const LOOP: Self = Self(108);
    pub const LINUX_SLL: Self = Self(113);
    pub const PFLOG: Self = Self(117);
    pub const IEEE802_11_PRISM: Self = Self(119);
    pub const IEEE802_11_RADIOTAP: Self = Self(127);
    pub const ARCNET_LINUX: Self = Self(129);
    pub const MTP2: Self = Self(140);
    pub const PPI: Self = Self(192);
    pub const IEEE802_15_4_WITHFCS: Self = Self(195);
    pub const IPNET: Self = Self(226);
    pub const CAN_SOCKETCAN: Self = Self(227);
    pub const IPV4: Self = Self(228);
    pub const IPV6: Self = Self(229);
    pub const IEEE802_15_4_NOFCS: Self = Self(230);
    pub const DBUS: Self = Self(231);
    pub const NFLOG: Self = Self(239);
    pub const IPOIB: Self = Self(242);
    pub const NETLINK: Self = Self(253);
    pub const PKTAP: Self = Self(258);
    pub const VSOCK: Self = Self(271);
    pub const ETHERNET_MPACKET: Self = Self(274);
    pub const LINUX_SLL2: Self = Self(276);

    /// libpcap's short name for this link type (`EN10MB`, `LINUX_SLL`, ...), or `None` for a
    /// value libpcap does not know either.
    pub fn name(&self) -> Option<&'static str> {
        let name = match self.0 {
            0 => "NULL",
            1 => "EN10MB",
            3 => "AX25",
            6 => "IEEE802",
            7 => "ARCNET",
            8 => "SLIP",
            9 => "PPP",
            10 => "FDDI",
            50 => "PPP_SERIAL",
            51 => "PPP_ETHER",
            99 => "SYMANTEC_FIREWALL",
            100 => "ATM_RFC1483",
            101 => "RAW",
            104 => "C_HDLC",
            105 => "IEEE802_11",
            106 => "ATM_CLIP",
            107 => "FRELAY",
            108 => "LOOP",
            109 => "ENC",
            112 => "HDLC",
            113 => "LINUX_SLL",
            114 => "LTALK",
            115 => "ECONET",
            117 => "PFLOG",
            118 => "CISCO_IOS",
            119 => "PRISM_HEADER",
            121 => "HHDLC",
            122 => "IP_OVER_FC",
            123 => "SUNATM",
            124 => "RIO",
            125 => "PCI_EXP",
            126 => "AURORA",
            127 => "IEEE802_11_RADIO",
            128 => "TZSP",
            129 => "ARCNET_LINUX",
            130 => "JUNIPER_MLPPP",
            131 => "JUNIPER_MLFR",
            132 => "JUNIPER_ES",
            133 => "JUNIPER_GGSN",
            134 => "JUNIPER_MFR",
            135 => "JUNIPER_ATM2",
            136 => "JUNIPER_SERVICES",
            137 => "JUNIPER_ATM1",
            138 => "APPLE_IP_OVER_IEEE1394",
            139 => "MTP2_WITH_PHDR",
            140 => "MTP2",
            141 => "MTP3",
            142 => "SCCP",
            143 => "DOCSIS",
            144 => "LINUX_IRDA",
            147 => "USER0",
            148 => "USER1",
            149 => "USER2",
            150 => "USER3",
            151 => "USER4",
            152 => "USER5",
            153 => "USER6",
            154 => "USER7",
            155 => "USER8",
            156 => "USER9",
            157 => "USER10",
            158 => "USER11",
            159 => "USER12",
            160 => "USER13",
            161 => "USER14",
            162 => "USER15",
            163 => "IEEE802_11_RADIO_AVS",
            164 => "JUNIPER_MONITOR",
            165 => "BACNET_MS_TP",
            166 => "PPP_PPPD",
            167 => "JUNIPER_PPPOE",
            168 => "JUNIPER_PPPOE_ATM",
            169 => "GPRS_LLC",
            170 => "GPF_T",
            171 => "GPF_F",
            172 => "GCOM_T1E1",
            173 => "GCOM_SERIAL",
            174 => "JUNIPER_PIC_PEER",
            175 => "ERF_ETH",
            176 => "ERF_POS",
            177 => "LINUX_LAPD",
            178 => "JUNIPER_ETHER",
            179 => "JUNIPER_PPP",
            180 => "JUNIPER_FRELAY",
            181 => "JUNIPER_CHDLC",
            182 => "MFR",
            183 => "JUNIPER_VP",
            184 => "A429",
            185 => "A653_ICM",
            186 => "USB_FREEBSD",
            187 => "BLUETOOTH_HCI_H4",
            188 => "IEEE802_16_MAC_CPS",
            189 => "USB_LINUX",
            190 => "CAN20B",
            191 => "IEEE802_15_4_LINUX",
            192 => "PPI",
            193 => "IEEE802_16_MAC_CPS_RADIO",
            194 => "JUNIPER_ISM",
            195 => "IEEE802_15_4",
            196 => "SITA",
            197 => "ERF",
            198 => "RAIF1",
            199 => "IPMB_KONTRON",
            200 => "JUNIPER_ST",
            201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
            202 => "AX25_KISS",
            203 => "LAPD",
            204 => "PPP_WITH_DIR",
            205 => "C_HDLC_WITH_DIR",
            206 => "FRELAY_WITH_DIR",
            207 => "LAPB_WITH_DIR",
            209 => "IPMB_LINUX",
            210 => "FLEXRAY",
            211 => "MOST",
            212 => "LIN",
            213 => "X2E_SERIAL",
            214 => "X2E_XORAYA",
            215 => "IEEE802_15_4_NONASK_PHY",
            216 => "LINUX_EVDEV",
            217 => "GSMTAP_UM",
            218 => "GSMTAP_ABIS",
            219 => "MPLS",
            220 => "USB_LINUX_MMAPPED",
            221 => "DECT",
            222 => "AOS",
            223 => "WIHART",
            224 => "FC_2",
            225 => "FC_2_WITH_FRAME_DELIMS",
            226 => "IPNET",
            227 => "CAN_SOCKETCAN",
            228 => "IPV4",
            229 => "IPV6",
            230 => "IEEE802_15_4_NOFCS",
            231 => "DBUS",
            232 => "JUNIPER_VS",
            233 => "JUNIPER_SRX_E2E",
            234 => "JUNIPER_FIBRECHANNEL",
            235 => "DVB_CI",
            236 => "MUX27010",
            237 => "STANAG_5066_D_PDU",
            238 => "JUNIPER_ATM_CEMIC",
            239 => "NFLOG",
            240 => "NETANALYZER",
            241 => "NETANALYZER_TRANSPARENT",
            242 => "IPOIB",
            243 => "MPEG_2_TS",
            244 => "NG40",
            245 => "NFC_LLCP",
            246 => "PFSYNC",
            247 => "INFINIBAND",
            248 => "SCTP",
            249 => "USBPCAP",
            250 => "RTAC_SERIAL",
            251 => "BLUETOOTH_LE_LL",
            252 => "WIRESHARK_UPPER_PDU",
            253 => "NETLINK",
            254 => "BLUETOOTH_LINUX_MONITOR",
            255 => "BLUETOOTH_BREDR_BB",
            256 => "BLUETOOTH_LE_LL_WITH_PHDR",
            257 => "PROFIBUS_DL",
            258 => "PKTAP",
            259 => "EPON",
            260 => "IPMI_HPM_2",
            261 => "ZWAVE_R1_R2",
            262 => "ZWAVE_R3",
            263 => "WATTSTOPPER_DLM",
            264 => "ISO_14443",
            265 => "RDS",
            266 => "USB_DARWIN",
            267 => "OPENFLOW",
            268 => "SDLC",
            269 => "TI_LLN_SNIFFER",
            270 => "LORATAP",
            271 => "VSOCK",
            272 => "NORDIC_BLE",
            273 => "DOCSIS31_XRA31",
            274 => "ETHERNET_MPACKET",
            275 => "DISPLAYPORT_AUX",
            276 => "LINUX_SLL2",
            277 => "SERCOS_MONITOR",
            278 => "OPENVIZSLA",
            279 => "EBHSCR",
            280 => "VPP_DISPATCH",
            281 => "DSA_TAG_BRCM",
            282 => "DSA_TAG_BRCM_PREPEND",
            283 => "IEEE802_15_4_TAP",
            284 => "DSA_TAG_DSA",
            285 => "DSA_TAG_EDSA",
            286 => "ELEE",
            287 => "Z_WAVE_SERIAL",
            288 => "USB_2_0",
            289 => "ATSC_ALP",
            _ => return None,
        };
        Some(name)
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<u16> for LinkType {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_names() {
        assert_eq!(LinkType::ETHERNET.to_string(), "1 (EN10MB)");
        assert_eq!(LinkType::LINUX_SLL2.to_string(), "276 (LINUX_SLL2)");
        assert_eq!(LinkType(65000).to_string(), "65000");
        assert_eq!(LinkType::RAW.name(), Some("RAW"));
        assert_eq!(LinkType(2).name(), None);
    }
}

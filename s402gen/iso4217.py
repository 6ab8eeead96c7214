"""ISO 4217 currency codes, the one list s402gen checks ``currency`` against.

Source: ISO 4217 "List One: Currency, fund and precious metal codes", as
published by the maintenance agency (SIX Group,
https://www.six-group.com/en/products-services/financial-information/data-standards.html),
the edition of 1 January 2024 (with SLE, VED, ZWG). Every alphabetic code of
that list is here, funds and precious metals included; withdrawn codes (list
three) are not. No installed dependency carries the list, hence this file.
"""

from __future__ import annotations

#: Every current ISO 4217 alphabetic code.
CURRENCY_CODES = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XDR XOF XPD XPF XPT XSU XTS XUA XXX
    YER ZAR ZMW ZWG ZWL
    """.split())

package demo

import "referrals/storage"

var (
	demoOrgs = []weighted[demoOrg]{
		{demoOrg{"5f0d7c1e-6a3b-4c1e-9a51-0b7e3c9d2a01", "Contoso Consulting", "Seattle", "+1 206 555 01##"}, 6},
		{demoOrg{"8a4e2b9f-1c7d-4e3a-b6f2-7d9c0e1a3b02", "Fabrikam Cloud Services", "London", "+44 20 7946 0###"}, 12},
		{demoOrg{"c3b1a9e7-5d2f-4a8c-9e1b-2f6d4c8a0b03", "Northwind Solutions", "Munich", "+49 89 #### ####"}, 11},
		{demoOrg{"1e9f3c7a-8b2d-4f6e-a0c5-9d3b7e1f2c04", "Adventure Works IT", "Sydney", "+61 2 9### ####"}, 10},
		{demoOrg{"7b2c8e4f-0a9d-4c3b-8e7f-1a5c9d2e6b05", "Tailspin Systems", "Toronto", "+1 416 555 01##"}, 9},
		{demoOrg{"2d6a0f8b-3e1c-4b9d-a7e2-5c0f8b3d9a06", "Wide World Partners", "Bangalore", "+91 80 #### ####"}, 9},
		{demoOrg{"9c5e1b3d-7f0a-4e2c-b8d6-3a9e5c1b7f07", "Litware Digital", "Paris", "+33 1 ## ## ## ##"}, 8},
		{demoOrg{"4f8b2d6e-9c3a-4d1f-a5b7-8e2c6f0a4d08", "Proseware Group", "Tokyo", "+81 3 #### ####"}, 7},
		{demoOrg{"6e0c4a8f-2b5d-4f9e-b3a1-7c4e0a6f2b09", "Trey Research", "São Paulo", "+55 11 9#### ####"}, 6},
		{demoOrg{"0a7d3f9c-4e8b-4a2d-9f6c-1b7d3a9e5c10", "Woodgrove Advisory", "Amsterdam", "+31 20 ### ####"}, 6},
		{demoOrg{"b1f5c9a3-6d0e-4b7f-8c2a-4e0b6d2f8a11", "Alpine Ski Digital", "Denver", "+1 303 555 01##"}, 5},
		{demoOrg{"e4a8d2f6-1b9c-4e5a-a3d7-0f5b9c1e7d12", "Lucerne Publishing Tech", "Zurich", "+41 44 ### ## ##"}, 4},
	}
	demoFirst   = []string{"Ana", "Ben", "Chen", "Dana", "Elif", "Farah", "Gustavo", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Maya", "Nikolai", "Olivia", "Priya", "Quentin", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wen", "Yusuf", "Zoe"}
	demoLast    = []string{"Alvarez", "Becker", "Chowdhury", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh"}
	demoCompany = []string{"Blue Harbor", "Cedar Ridge", "Silver Lake", "Granite Peak", "Maple Leaf", "Red Rock", "Evergreen", "Summit", "Riverbend", "Lighthouse", "Ironwood", "Golden Gate", "Oakmont", "Starlight", "Bright Path"}
	demoTrade   = []string{"Logistics", "Health", "Bank", "Foods", "Manufacturing", "Retail", "Energy", "Hotels", "Education Trust", "Media", "Pharma", "Insurance", "Motors", "Farms", "Airlines"}
	demoSizes   = []string{"1-9", "10-49", "50-249", "250-999", "1000-4999", "5000+"}
	demoNotes   = []string{
		"Customer wants to move their on-premises file servers to the cloud before the lease ends.",
		"Asked for a proof of concept with two departments first.",
		"Budget approved for this fiscal year; decision maker is the CIO.",
		"Evaluating two other vendors; price is the main concern.",
		"Needs help with licensing consolidation after an acquisition.",
		"Interested in a managed service contract rather than a one-off project.",
		"Security audit found gaps; looking for identity and device management.",
		"Wants training for 40 staff alongside the rollout.",
		"Existing partner relationship ended; looking for a new partner quickly.",
		"Pilot planned for next quarter, full rollout depends on results.",
	}
	demoSources = []weighted[storage.ReferralSource]{{storage.SourcePartnerLed, 40}, {storage.SourceWebDirect, 25}, {storage.SourceAgentLed, 20}, {storage.SourceP2P, 15}}
	// demoTagWeights weighs the catalog's tags; a tag not named has weight 1.
	demoTagWeights = map[storage.TagCategory]map[string]int{
		storage.TagIndustryFocus: {"Healthcare": 14, "Financial Services": 14, "Manufacturing": 13, "Retail & Consumer Goods": 12,
			"Government": 9, "Education": 8, "Services": 8, "Communications & Media": 6, "Travel & Transportation": 4,
			"Power & Utilities": 4, "Wholesale & Distribution": 3, "Hospitality": 2, "Public Safety and National Security": 2},
		storage.TagProducts: {"Azure": 25, "Microsoft365": 20, "Teams": 15, "Dynamics365Enterprise": 8, "Dynamics365Business": 6,
			"PowerBI": 6, "SQL": 4, "EnterpriseMobilityAndSecurity": 4, "SharePoint": 3, "Windows": 3, "Office": 2},
		storage.TagServiceTypes: {"DeploymentOrMigration": 10, "ConsultingAndProfessional": 8, "ManagedServices": 6, "Licensing": 5,
			"Integration": 4, "ProjectServices": 3, "LearningAndCertification": 2},
		storage.TagSolutions: {"CloudMigration": 10, "AdvancedAnalytics": 6, "ArtificialIntelligence": 6, "ThreatProtection": 5,
			"IdentityandAccessManagement": 5, "Dynamics365forSales": 5, "BackupDisasterRecovery": 4, "DataWarehouse": 4,
			"MachineLearning": 3, "InternetofThings": 3, "DevOps": 3, "SQLServerUpgrade": 3},
	}
)

// demoOrg is a partner organization: its users' phone numbers follow
// phone, a pattern whose # are digits.
type demoOrg struct{ id, name, location, phone string }

// demoPlace is a customer address, with how often customers are there.
type demoPlace struct {
	country, city, state, postal, street string
	phone                                string // a pattern whose # are digits
	weight                               int
}

var demoPlaces = []demoPlace{
	{"US", "Seattle", "WA", "98101", "Pine Street", "+1 206 555 01##", 12},
	{"US", "Austin", "TX", "78701", "Congress Avenue", "+1 512 555 01##", 10},
	{"US", "Boston", "MA", "02110", "Atlantic Avenue", "+1 617 555 01##", 8},
	{"GB", "London", "", "EC2A 4NE", "Old Street", "+44 20 7946 0###", 10},
	{"GB", "Manchester", "", "M1 1AE", "Market Street", "+44 161 496 0###", 4},
	{"DE", "Munich", "Bavaria", "80331", "Marienplatz", "+49 89 #### ####", 7},
	{"DE", "Hamburg", "Hamburg", "20095", "Mönckebergstraße", "+49 40 #### ####", 5},
	{"FR", "Lyon", "", "69002", "Rue de la République", "+33 4 72 ## ## ##", 7},
	{"IN", "Bengaluru", "Karnataka", "560001", "MG Road", "+91 80 #### ####", 8},
	{"AU", "Melbourne", "VIC", "3000", "Collins Street", "+61 3 9### ####", 7},
	{"CA", "Vancouver", "BC", "V6B 1A1", "Granville Street", "+1 604 555 01##", 7},
	{"JP", "Osaka", "Osaka", "530-0001", "Umeda", "+81 6 #### ####", 6},
	{"BR", "São Paulo", "SP", "01310-100", "Avenida Paulista", "+55 11 9#### ####", 5},
	{"NL", "Utrecht", "", "3511 AA", "Oudegracht", "+31 30 ### ####", 4},
}

// demoLegalForms are the company suffixes of each country's customers.
var demoLegalForms = map[string][]string{
	"US": {"Inc.", "LLC", "Corp."}, "GB": {"Ltd", "plc"}, "DE": {"GmbH", "AG"}, "FR": {"SAS", "SA"},
	"IN": {"Pvt Ltd", "Ltd"}, "AU": {"Pty Ltd"}, "CA": {"Inc.", "Ltd"}, "JP": {"KK", "Co., Ltd."},
	"BR": {"Ltda.", "S.A."}, "NL": {"B.V.", "N.V."},
}

// asciiSpelling spells the letters that do not decompose into an ASCII
// letter and accents.
var asciiSpelling = map[rune]string{'ß': "ss", 'æ': "ae", 'ø': "o", 'œ': "oe", 'ł': "l", 'đ': "d", 'ı': "i", 'þ': "th"}

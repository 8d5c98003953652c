package storage

import (
	"slices"
	"strings"
	"unicode"
)

// CatalogIDs returns the tag ids of category c, in the specification's
// order.
func CatalogIDs(c TagCategory) []string { return slices.Clone(catalogIDs[c]) }

// catalogIDs are the tag ids of the specification's four lists, in its order.
var catalogIDs = map[TagCategory][]string{
	TagProducts: {
		"Azure", "EnterpriseMobilityAndSecurity", "Exchange", "DeveloperTools",
		"Dynamics365Business", "Dynamics365Enterprise", "DynamicsAX,GP,NAV,SL",
		"Microsoft365", "Office", "PowerBI", "Project", "SharePoint",
		"SkypeForBusiness", "Surface", "SurfaceHub", "SQL", "Teams", "Visio",
		"Windows", "Yammer",
	},
	TagServiceTypes: {
		"ConsultingAndProfessional", "CustomSolution(ISV)", "DeploymentOrMigration",
		"Hardware", "Integration", "IPServices(ISV)", "LearningAndCertification",
		"Licensing", "ManagedServices", "ProjectServices",
	},
	TagIndustryFocus: {
		"Agriculture, Forestry, & Fishing", "Communications & Media", "Education",
		"Financial Services", "Government", "Healthcare", "Hospitality",
		"Manufacturing", "Power & Utilities", "Public Safety and National Security",
		"Retail & Consumer Goods", "Services", "Travel & Transportation",
		"Wholesale & Distribution",
	},
	TagSolutions: {
		"AdvancedAnalytics", "ApplicationIntegration", "ArtificialIntelligence",
		"AzureSecurityOperationManagement", "AzureStack", "BackupDisasterRecovery",
		"BigData", "Blockchain", "Chatbot", "CloudDatabaseMigration", "CloudMigration",
		"CloudVoice", "CognitiveServices", "CompetitiveDatabaseMigration", "Containers",
		"DataWarehouse", "DatabaseonLinux", "DevelopmentandTest", "DevOps",
		"DigitalMedia", "Dynamics365forCustomerService", "Dynamics365forFieldService",
		"Dynamics365forFinanceOperations", "Dynamics365forRetail", "Dynamics365forSales",
		"Dynamics365forTalent", "DynamicsonAzure", "EnterpriseBusinessIntelligence",
		"Gaming", "HighPerformanceComputing", "HybridStorage",
		"IdentityandAccessManagement", "InformationManagement", "InternetofThings",
		"MachineLearning", "Microserviceapplications", "MobileApplications",
		"MySQLPostgresMigrationtoAzure", "Networking", "NoSQLMigration", "RedhatonAzure",
		"RegulatoryComplianceGDPR", "SAPonAzure", "ServerlessComputing",
		"SharepointonAzure", "SQLServerUpgrade", "ThreatProtection", "WebDevelopment",
	},
}

// displayNames overrides the names splitWords cannot guess: run-together
// lower-case words and product spellings.
var displayNames = map[string]string{
	"EnterpriseMobilityAndSecurity": "Enterprise Mobility + Security",
	"DynamicsAX,GP,NAV,SL":          "Dynamics AX, GP, NAV, SL",
	"BackupDisasterRecovery":        "Backup and Disaster Recovery",
	"DatabaseonLinux":               "Database on Linux",
	"DevelopmentandTest":            "Development and Test",
	"DevOps":                        "DevOps",
	"DynamicsonAzure":               "Dynamics on Azure",
	"IdentityandAccessManagement":   "Identity and Access Management",
	"InternetofThings":              "Internet of Things",
	"Microserviceapplications":      "Microservice Applications",
	"MySQLPostgresMigrationtoAzure": "MySQL and PostgreSQL Migration to Azure",
	"NoSQLMigration":                "NoSQL Migration",
	"RedhatonAzure":                 "Red Hat on Azure",
	"SAPonAzure":                    "SAP on Azure",
	"SharepointonAzure":             "SharePoint on Azure",
	"SharePoint":                    "SharePoint",
}

// Catalog returns the 92 tags of the specification, in its order.
func Catalog() []Tag {
	var tags []Tag
	for _, c := range tagCategories {
		for _, id := range catalogIDs[c] {
			tags = append(tags, Tag{ID: id, Category: c, Name: displayName(id)})
		}
	}
	return tags
}

func displayName(id string) string {
	if name, ok := displayNames[id]; ok {
		return name
	}
	if strings.Contains(id, " ") {
		return id // already written for people (the industry list)
	}
	return splitWords(id)
}

// splitWords turns "Dynamics365forSales" into "Dynamics 365 for Sales" and
// "IPServices(ISV)" into "IP Services (ISV)", writing joining words in lower case.
func splitWords(id string) string {
	r := []rune(id)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && wordStarts(r, i) {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	words := strings.Fields(b.String())
	for i, w := range words {
		switch w {
		case "And", "Or", "For", "On", "Of", "To":
			if i > 0 {
				words[i] = strings.ToLower(w)
			}
		}
	}
	return strings.Join(words, " ")
}

// wordStarts reports whether a new word begins at r[i].
func wordStarts(r []rune, i int) bool {
	prev, c := r[i-1], r[i]
	next := rune(0)
	if i+1 < len(r) {
		next = r[i+1]
	}
	switch {
	case c == '(':
		return true
	case unicode.IsUpper(c) && unicode.IsLower(prev):
		return true
	case unicode.IsUpper(c) && unicode.IsUpper(prev) && unicode.IsLower(next):
		return true // the end of an acronym: "SQLServer"
	case unicode.IsDigit(c) != unicode.IsDigit(prev) && unicode.IsLetter(prev) != unicode.IsLetter(c):
		return true
	}
	return false
}
